"""Build a real (tiny) bundle for tests: random tiny GPT-2 + synthetic corpus through training.train."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from synthetic import make_corpus

REPO = Path(__file__).resolve().parent.parent
GPT2_TOKENIZER_DIR = Path(os.environ.get("DETECTOR_GPT2_TOKENIZER", REPO.parent / "shared" / "gpt2-tokenizer"))


def build_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 64-wide GPT-2 with random weights and the real GPT-2 tokenizer, saved to ``folder``."""
    tokenizer = AutoTokenizer.from_pretrained(GPT2_TOKENIZER_DIR)
    config = GPT2Config.from_pretrained(GPT2_TOKENIZER_DIR)
    config.n_layer, config.n_embd, config.n_head = 2, 64, 2
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_bundle(root: Path) -> Path:
    """Train a bundle end to end on tiny data; returns the bundle folder (``root/bundle``)."""
    from training.train import Config, run

    lm_dir = build_tiny_gpt2(root / "gpt2")
    make_corpus(root / "data", n_pairs=60)
    run(Config(name="tiny", lm=str(lm_dir), data_dir=str(root / "data"), sources=("synthetic",), source_weights=(),
               sizes=(50, 36, 30), max_tokens=64, k=1, epochs=2, ablation_k=(), runs_dir=str(root / "runs"),
               bundle_dir=str(root / "bundle"), reports_dir=str(root / "reports")))
    return root / "bundle"
