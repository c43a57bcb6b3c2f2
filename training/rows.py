"""Step 1 of training: the run's texts. Load one language's sources, split by prompt into train/cal/test, sample.

The sample is cached in ``runs/<name>/rows.jsonl`` (with ``split.json``) and pinned by ``config.json``
(``Config.data_key``): a rerun with the same data settings reuses it, a rerun with other settings refuses the
folder instead of mixing two samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from training.config import Config
from training.data import load_sources, sample_split, split_manifest


def prepare_rows(cfg: Config, run: Path) -> pd.DataFrame:
    """Sampled, split rows (cached in rows.jsonl, pinned by config.json)."""
    run.mkdir(parents=True, exist_ok=True)
    key_path, rows_path = run / "config.json", run / "rows.jsonl"
    if rows_path.exists() and key_path.exists():
        if json.loads(key_path.read_text()) != cfg.data_key():
            raise SystemExit(f"{run} holds a run with another configuration; pass --name or delete it")
        return pd.read_json(rows_path, lines=True, dtype=False)
    df = load_sources(cfg.sources, cfg.data_dir, lang=cfg.lang)
    if cfg.min_chars:
        df = df[df["text"].str.strip().str.len() >= cfg.min_chars].reset_index(drop=True)
    sizes = dict(zip(("train", "cal", "test"), cfg.sizes))
    rows = sample_split(df, sizes, dict(cfg.source_weights) or None, seed=cfg.seed)
    rows.to_json(rows_path, orient="records", lines=True)
    (run / "split.json").write_text(json.dumps(split_manifest(rows), default=str))
    key_path.write_text(json.dumps(cfg.data_key()))
    return rows
