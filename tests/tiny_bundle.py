"""Build a real (tiny) bundle for tests: random tiny GPT-2 + synthetic corpus through training.train."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import build_tiny_gpt2
from detector.lm import DTYPE_ENV
from synthetic import make_corpus

TINY_TRAIN_SIZES = (50, 36, 30)


def build_tiny_bundle(root: Path, **config) -> Path:
    """Train a bundle end to end on tiny data; returns the bundle folder (``root/bundle``). ``config``
    overrides ``training.train.Config`` fields (e.g. ``heads=("blocks",)``).

    Trained in fp32 whatever the CPU (``auto`` would mean bf16 on avx512_bf16/AMX machines), so the bundle -
    and every test comparing another precision against it - is the same on every machine.
    """
    from training.train import Config, run

    lm_dir = build_tiny_gpt2(root / "gpt2")
    make_corpus(root / "data", n_pairs=60)
    previous = os.environ.get(DTYPE_ENV)
    os.environ[DTYPE_ENV] = "float32"
    try:
        run(Config(name="tiny", lm=str(lm_dir), data_dir=str(root / "data"), sources=("synthetic",),
                   source_weights=(), sizes=TINY_TRAIN_SIZES, max_tokens=64,
                   runs_dir=str(root / "runs"), bundle_dir=str(root / "bundle"), reports_dir=str(root / "reports"),
                   **config))
    finally:
        if previous is None:
            os.environ.pop(DTYPE_ENV, None)
        else:
            os.environ[DTYPE_ENV] = previous
    return root / "bundle"
