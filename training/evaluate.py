"""Held-out evaluation of a bundle: ``python -m training.evaluate [--bundle NAME] [--end-to-end]``.

Writes ``reports/eval.md``, ``reports/eval.json`` (top-level ``overall`` with auroc, tpr_at_1fpr,
tpr_at_5fpr, ece, brier) and ROC / reliability / histogram PNGs, over the test split of the
bundle's training run: overall, per source, domain, generator, variant and length bucket, plus
the ablation (features only, classifier only, combined).

By default the test texts' cached LM pass (``runs/<name>/cache``) is reused and pushed through
the bundle's own head and combiner; ``--end-to-end`` re-scores the raw test texts with
``Detector.score_many`` instead (slower, and checks that training and serving agree).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from training.report import write_report


def evaluate_predictions(test_df: pd.DataFrame, ablation: dict[str, np.ndarray], reports_dir: Path,
                         extra: dict | None = None) -> dict:
    """Write the report for test rows carrying y, p, label (verdict) and the grouping columns."""
    return write_report(Path(reports_dir), test_df, ablation=ablation, headline_name="combined", extra=extra,
                        abstain_col="label")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="smollm2-en")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--reports-dir", default=None)
    ap.add_argument("--end-to-end", action="store_true", help="re-score raw test texts with the Detector")
    a = ap.parse_args(argv)

    from detector.detector import Detector
    from training.data import REPO_ROOT
    from training.featurize import load_cache
    from training.train import feature_rows
    from training.train_head import _pad

    det = Detector.load(a.bundle)
    name = det.bundle.name
    run_dir = Path(a.runs_dir or REPO_ROOT / "runs") / name
    rows = pd.read_json(run_dir / "rows.jsonl", lines=True, dtype=False)
    test = rows[rows["split"] == "test"].reset_index(drop=True).copy()
    test["y"] = (test["label"] == "ai").astype(int)
    test["true_label"] = test["label"]
    if a.end_to_end:
        scores = det.score_many(test["text"].tolist())
        feats = [s.features for s in scores]
        test["label"] = [s.label for s in scores]
        test["n_tokens"] = [s.n_tokens for s in scores]
    else:
        import torch

        records = load_cache(run_dir / "cache", len(rows))
        test_records = [records[i] for i in np.flatnonzero(rows["split"].to_numpy() == "test")]
        logits = []
        with torch.inference_mode():
            for rec in test_records:
                x, mask = _pad([rec["hidden"]])
                logits.append(float(det.head(x.to(det.lm.device), mask.to(det.lm.device))[0][0]))
        feats = feature_rows(test_records, logits)
        test["n_tokens"] = [f["n_tokens"] for f in feats]
        test["label"] = None
    comb = det.bundle.combiner
    test["p"] = comb.predict_proba(comb.matrix(feats))[:, 1]
    if not a.end_to_end:
        t_ai, t_h = det.threshold_ai, det.threshold_human
        test["label"] = ["insufficient_text" if n < det.min_tokens else "ai" if p >= t_ai else "human" if p <= t_h
                         else "uncertain" for n, p in zip(test["n_tokens"], test["p"])]
    report = evaluate_predictions(test, {"combined": test["p"].to_numpy()},
                                  Path(a.reports_dir or REPO_ROOT / "reports"),
                                  extra={"bundle": name, "mode": "end_to_end" if a.end_to_end else "cached_lm_pass",
                                         "command": "python -m training.evaluate" + (" --end-to-end" * a.end_to_end)})
    print(report["overall"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
