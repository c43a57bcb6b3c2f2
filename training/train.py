"""Train a bundle from scratch, resumably: ``python -m training.train`` (see --help).

Steps (each cached under ``runs/<name>/``, so an interrupted run picks up where it stopped):
1. load English texts, split by prompt into train/cal/test, sample (``rows.jsonl``, ``split.json``);
2. one LM pass per text -> token statistics + hidden state at block L-k (``cache/``);
3. fine-tune the top-k blocks + head on train (``head_k<k>.pt``, per-epoch checkpoints);
4. fit the calibrated combiner, the segment model and the decision thresholds on cal;
5. evaluate on test (``reports/``) and write the bundle (``detector/bundles/<name>/``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from detector.bundle import BUNDLES_DIR, FORMAT_VERSION, Bundle
from detector.combiner import CalibratedCombiner
from detector.features import FEATURE_NAMES, extract_features
from detector.lm import DEFAULT_LM, describe, load_lm
from detector.segments import SEGMENT_FEATURE_NAMES, SEGMENT_LOG_FEATURES, sentence_segment_features
from detector.sentences import sentence_spans
from detector.thresholds import threshold_at_fnr, threshold_at_fpr
from detector.token_stats import TokenStats
from training.data import REPO_ROOT, load_sources, sample_split, split_manifest
from training.featurize import featurize, load_cache
from training.train_head import HeadTrainer

# Features passed through log1p before scaling (heavy-tailed).
LOG_FEATURES = ("perplexity", "burstiness_mean_ppl", "burstiness_std_ppl", "burstiness_max_ppl", "n_tokens")
TARGET_FPR = 0.01  # share of human calibration texts allowed at or above the `ai` threshold
TARGET_FNR = 0.01  # share of AI calibration texts allowed at or below the `human` threshold
MIN_TOKEN_CANDIDATES = (16, 32, 64, 128)  # lower edges of the length buckets tried for `insufficient_text`
MIN_BUCKET_AUROC = 0.85  # a length bucket below this AUROC on cal is "where accuracy collapses"
MAX_SEGMENTS = 8000  # sentences used to fit the segment model


@dataclass
class Config:
    name: str = "smollm2-en"
    lm: str = DEFAULT_LM
    data_dir: str | None = None
    sources: tuple[str, ...] = ("detectrl", "outfox_dev", "hc3_plus")
    lang: str = "en"
    sizes: tuple[int, int, int] = (2000, 800, 800)
    source_weights: tuple[tuple[str, float], ...] = (("DetectRL", 0.6), ("OUTFOX", 0.2), ("HC3-Plus", 0.2))
    max_tokens: int = 256
    k: int = 2
    epochs: int = 3
    batch_size: int = 8
    lr: float = 5e-5
    seed: int = 0
    ablation_k: tuple[int, ...] = (1,)
    runs_dir: str = str(REPO_ROOT / "runs")
    bundle_dir: str | None = None
    reports_dir: str = str(REPO_ROOT / "reports")
    device: str | None = None

    def data_key(self) -> dict:
        """What the cached rows and LM pass depend on: change any and the cache is rebuilt elsewhere."""
        return {"lm": self.lm, "sources": list(self.sources), "lang": self.lang, "sizes": list(self.sizes),
                "source_weights": dict(self.source_weights), "max_tokens": self.max_tokens, "k": self.k,
                "seed": self.seed}


def prepare_rows(cfg: Config, run: Path) -> pd.DataFrame:
    """Sampled, split rows (cached in rows.jsonl, pinned by config.json)."""
    run.mkdir(parents=True, exist_ok=True)
    key_path, rows_path = run / "config.json", run / "rows.jsonl"
    if rows_path.exists() and key_path.exists():
        if json.loads(key_path.read_text()) != cfg.data_key():
            raise SystemExit(f"{run} holds a run with another configuration; pass --name or delete it")
        return pd.read_json(rows_path, lines=True, dtype=False)
    df = load_sources(cfg.sources, cfg.data_dir, lang=cfg.lang)
    sizes = dict(zip(("train", "cal", "test"), cfg.sizes))
    rows = sample_split(df, sizes, dict(cfg.source_weights) or None, seed=cfg.seed)
    rows.to_json(rows_path, orient="records", lines=True)
    (run / "split.json").write_text(json.dumps(split_manifest(rows), default=str))
    key_path.write_text(json.dumps(cfg.data_key()))
    return rows


def _stats(rec: dict) -> TokenStats:
    return TokenStats(token_ids=rec["token_ids"], offsets=rec["offsets"], logprob=rec["logprob"], rank=rec["rank"],
                      entropy=rec["entropy"], var_ref=rec["var_ref"], truncated=rec["truncated"])


def feature_rows(records: list[dict], doc_logits: list[float]) -> list[dict[str, float]]:
    """Document feature dicts (zero-shot features + classifier logit), as the Detector builds them."""
    rows = []
    for rec, logit in zip(records, doc_logits):
        feats = extract_features(_stats(rec), sentence_spans(rec["text"]))
        feats["classifier_logit"] = float(logit)
        rows.append(feats)
    return rows


def segment_rows(records: list[dict], token_logits: list[torch.Tensor], labels: np.ndarray,
                 rng: np.random.Generator) -> tuple[list[dict[str, float]], np.ndarray]:
    """Sentence feature dicts labelled with their document's label (a sample of MAX_SEGMENTS)."""
    feats, ys = [], []
    for rec, tok, y in zip(records, token_logits, labels):
        rows = sentence_segment_features(rec["logprob"], rec["rank"], rec["entropy"], rec["var_ref"], rec["offsets"],
                                         tok.numpy(), sentence_spans(rec["text"]))
        for r in rows:
            if r is not None:
                feats.append(r)
                ys.append(y)
    idx = rng.permutation(len(feats))[:MAX_SEGMENTS]
    return [feats[i] for i in idx], np.asarray(ys)[idx]


def choose_min_tokens(n_tokens: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[int, list[dict]]:
    """Shortest length from which every length bucket keeps AUROC >= MIN_BUCKET_AUROC on cal."""
    from training.metrics import auroc

    edges = list(MIN_TOKEN_CANDIDATES) + [10**9]
    table = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (n_tokens >= lo) & (n_tokens < hi)
        a = auroc(y[sel], p[sel]) if sel.sum() >= 10 else float("nan")
        table.append({"min_tokens": lo, "max_tokens": hi if hi < 10**9 else None, "n": int(sel.sum()),
                      "auroc": None if np.isnan(a) else round(float(a), 4)})
    chosen = MIN_TOKEN_CANDIDATES[-1]
    for i in range(len(table) - 1, -1, -1):
        if table[i]["auroc"] is not None and table[i]["auroc"] < MIN_BUCKET_AUROC:
            break
        chosen = table[i]["min_tokens"]
    return int(chosen), table


def feature_ranges(rows: list[dict[str, float]], y: np.ndarray) -> dict:
    """10th/50th/90th percentiles of each feature among human and AI cal texts (shown on the page)."""
    out = {}
    for name in rows[0]:
        values = np.asarray([r[name] for r in rows])
        out[name] = {label: [round(float(q), 4) for q in np.percentile(values[y == cls], [10, 50, 90])]
                     for label, cls in (("human", 0), ("ai", 1))}
    return out


def versions() -> dict:
    import sklearn
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}


def run(cfg: Config) -> dict:
    """The whole pipeline; returns the evaluation summary."""
    from training.evaluate import evaluate_bundle

    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.runs_dir) / cfg.name
    rows = prepare_rows(cfg, run_dir)
    lm = load_lm(cfg.lm, device=cfg.device)
    hidden_layer = lm.num_layers - cfg.k
    print(f"[train] {len(rows)} texts, LM {lm.identity}, {lm.dtype}, hidden layer {hidden_layer}", file=sys.stderr)
    featurize(lm, rows, run_dir / "cache", max_tokens=cfg.max_tokens, hidden_layer=hidden_layer,
              batch_size=cfg.batch_size)
    records = load_cache(run_dir / "cache", len(rows))
    y_all = (rows["label"] == "ai").astype(int).to_numpy()
    split = rows["split"].to_numpy()
    idx = {s: np.flatnonzero(split == s) for s in ("train", "cal", "test")}
    hiddens = [r["hidden"] for r in records]

    def train_head(k: int, epochs: int) -> HeadTrainer:
        trainer = HeadTrainer(lm.model, k=k, cached_k=cfg.k, lr=cfg.lr, epochs=epochs, batch_size=cfg.batch_size,
                              seed=cfg.seed, device=lm.device)
        return trainer.fit([hiddens[i] for i in idx["train"]], y_all[idx["train"]].tolist(),
                           checkpoint=run_dir / f"head_k{k}.pt")

    trainer = train_head(cfg.k, cfg.epochs)
    # the test split is scored later from the saved bundle (training.evaluate), exactly as shipped
    preds = {"cal": trainer.predict([hiddens[i] for i in idx["cal"]])}

    def split_records(s: str) -> list[dict]:
        return [records[i] for i in idx[s]]

    cal_rows = feature_rows(split_records("cal"), preds["cal"][0])
    y_cal = y_all[idx["cal"]]
    names = list(FEATURE_NAMES) + ["classifier_logit"]
    combined = CalibratedCombiner(names, LOG_FEATURES, random_state=cfg.seed)
    combined.fit(combined.matrix(cal_rows), y_cal)
    features_only = CalibratedCombiner(list(FEATURE_NAMES), LOG_FEATURES, random_state=cfg.seed)
    features_only.fit(features_only.matrix(cal_rows), y_cal)
    classifier_only = CalibratedCombiner(["classifier_logit"], random_state=cfg.seed)
    classifier_only.fit(classifier_only.matrix(cal_rows), y_cal)

    p_cal = combined.oof_proba_
    t_ai = threshold_at_fpr(p_cal[y_cal == 0], TARGET_FPR)
    t_human = min(threshold_at_fnr(p_cal[y_cal == 1], TARGET_FNR), t_ai)
    n_cal = np.asarray([r["n_tokens"] for r in cal_rows])
    min_tokens, length_table = choose_min_tokens(n_cal, y_cal, p_cal)

    rng = np.random.default_rng(cfg.seed)
    seg_x, seg_y = segment_rows(split_records("cal"), preds["cal"][1], y_cal, rng)
    segment = CalibratedCombiner(list(SEGMENT_FEATURE_NAMES), SEGMENT_LOG_FEATURES, random_state=cfg.seed)
    segment.fit(segment.matrix(seg_x), seg_y)

    extra_ablation = {}
    for k in cfg.ablation_k:
        if k == cfg.k:
            continue
        alt = train_head(k, cfg.epochs)
        alt_cal, alt_test = alt.predict([hiddens[i] for i in idx["cal"]])[0], \
            alt.predict([hiddens[i] for i in idx["test"]])[0]
        alt_comb = CalibratedCombiner(["classifier_logit"], random_state=cfg.seed)
        alt_comb.fit(np.asarray(alt_cal)[:, None], y_cal)
        extra_ablation[f"classifier_only_k{k}"] = alt_comb.predict_proba(np.asarray(alt_test)[:, None])[:, 1]

    thresholds = {"ai": t_ai, "human": t_human, "target_fpr": TARGET_FPR, "target_fnr": TARGET_FNR,
                  "min_tokens": min_tokens, "min_tokens_measurement": length_table,
                  "min_bucket_auroc": MIN_BUCKET_AUROC}
    manifest = {
        "name": cfg.name, "format_version": FORMAT_VERSION, "backbone": describe(lm), "max_tokens": cfg.max_tokens,
        "head": {"k": cfg.k, "pooling": "mean_token_logit", "file": "head.safetensors", "dtype": "bfloat16"},
        "features": names, "segment_features": list(SEGMENT_FEATURE_NAMES), "languages": [cfg.lang],
        "thresholds": thresholds,
        "calibration_probs": {"human": sorted(float(v) for v in p_cal[y_cal == 0]),
                              "ai": sorted(float(v) for v in p_cal[y_cal == 1])},
        "feature_ranges": feature_ranges(cal_rows, y_cal), "versions": versions(),
        "data": {"sources": list(cfg.sources), "lang": cfg.lang, "counts": split_manifest(rows)["counts"],
                 "split": "grouped by pair_id (id when null), hashed with seed; see runs/<name>/split.json",
                 "config": cfg.data_key()},
    }
    head_state = {k: v.to(torch.bfloat16) for k, v in trainer.head_.trainable_state_dict().items()
                  if not k.startswith("body.wpe")}
    bundle = Bundle(path=Path(cfg.bundle_dir or BUNDLES_DIR / cfg.name), manifest=manifest, combiner=combined,
                    segment_combiner=segment, head_state=head_state, metrics={},
                    ablation={"features_only": features_only, "classifier_only": classifier_only})
    bundle.save()
    extra = {"head_history": trainer.history_, "n": {s: int(len(v)) for s, v in idx.items()},
             "calibration_cv_brier": combined.calibration_scores_,
             "command": "python -m training.train" + (f" --name {cfg.name}" if cfg.name != "smollm2-en" else "")}
    report = evaluate_bundle(bundle.path, run_dir, Path(cfg.reports_dir), extra_ablation=extra_ablation, extra=extra)
    bundle.metrics = json.loads(json.dumps({"overall": report["overall"], "ablation": report.get("ablation"),
                                            "thresholds": thresholds}, default=str))
    bundle.save()
    print(f"[train] bundle written to {bundle.path}", file=sys.stderr)
    return report


def parse_args(argv: list[str] | None = None) -> Config:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Config()
    ap.add_argument("--name", default=d.name, help="bundle and run name")
    ap.add_argument("--lm", default=d.lm, help="backbone: embedded:smollm2, embedded:gemma3, a hub id or a local path")
    ap.add_argument("--data-dir", default=None, help="root of local datasets (default $DETECTOR_DATA_DIR or "
                                                     "../shared/data)")
    ap.add_argument("--sources", nargs="+", default=list(d.sources), help="dataset folders, paths or hub ids")
    ap.add_argument("--sizes", default=",".join(map(str, d.sizes)), help="texts in train,cal,test")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens)
    ap.add_argument("--k", type=int, default=d.k, help="top blocks fine-tuned")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--ablation-k", default=",".join(map(str, d.ablation_k)), help="extra head depths to compare "
                                                                                   "('' for none)")
    ap.add_argument("--runs-dir", default=d.runs_dir)
    ap.add_argument("--bundle-dir", default=None)
    ap.add_argument("--reports-dir", default=d.reports_dir)
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    weights = d.source_weights if a.sources == list(d.sources) else ()  # () = equal weights
    return Config(name=a.name, lm=a.lm, data_dir=a.data_dir, sources=tuple(a.sources),
                  sizes=tuple(int(x) for x in a.sizes.split(",")), source_weights=weights,
                  max_tokens=a.max_tokens, k=a.k, epochs=a.epochs, batch_size=a.batch_size,
                  ablation_k=tuple(int(x) for x in a.ablation_k.split(",") if x), runs_dir=a.runs_dir,
                  bundle_dir=a.bundle_dir, reports_dir=a.reports_dir, device=a.device)


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
