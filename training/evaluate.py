"""Held-out evaluation of a bundle: ``python -m training.evaluate [--bundle NAME] [--end-to-end]``.

Writes ``eval.md``, ``eval.json`` (top-level ``overall`` with auroc, tpr_at_1fpr, tpr_at_5fpr,
ece, brier) and ROC / reliability / histogram PNGs for the test split of the bundle's training
run: overall, per source, domain, generator, variant and length bucket, the verdict table, and
the ablation (features only, classifier only, combined) from the combiners stored in the bundle.

By default the test texts' cached LM pass (``runs/<name>/cache``) is pushed through the bundle's
own head and combiners; ``--end-to-end`` instead re-scores the raw test texts with
``Detector.score_many`` (slower; checks that training and serving agree) and writes to
``reports/end_to_end/``. Training calls ``evaluate_bundle`` too, so both give the same report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from detector.bundle import Bundle, resolve_bundle_path
from detector.detector import Detector, decide
from detector.lm import load_lm
from training.config import Config
from training.data import REPO_ROOT
from training.metrics import json_safe
from training.prepared import Prepared, prepare
from training.report import write_report


def _cached_features(det: Detector, data: Prepared) -> list[dict[str, float]]:
    """Test-split feature dicts from the cached LM pass, the bundle's own head giving ``classifier_logit``."""
    test = data.idx("test")
    if det.head_kind == "probe":
        depth = [data.layers.index(j) for j in det.head.layers]
        logits = det.head.decision_function(data.pooled[test][:, depth])
    else:
        from training.train_head import frozen_bridge, predict_head

        # the pass cached the state entering block L - cached_k; a shallower head runs the blocks in between
        bridge = frozen_bridge(det.lm.model, det.head.k, Config().cached_depth(det.lm.num_layers), det.lm.device)
        logits, _ = predict_head(det.head, [data.records[i]["hidden"] for i in test], det.lm.device, bridge=bridge)
    return [dict(data.zs_rows[i], classifier_logit=float(v)) for i, v in zip(test, logits)]


def evaluate_bundle(bundle: str | Path, run_dir: Path, reports_dir: Path, *, end_to_end: bool = False,
                    extra_ablation: dict[str, np.ndarray] | None = None, extra: dict | None = None,
                    generalization: dict | None = None, data: Prepared | None = None) -> dict:
    """Score the run's test split with the saved bundle and write the report; returns the eval dict.

    ``data``: the training run's prepared rows and cached LM pass (``training.prepared.prepare``); rebuilt
    from ``run_dir`` when not given.
    """
    loaded = Bundle.load(resolve_bundle_path(bundle))
    det = Detector(loaded, load_lm(loaded.manifest["backbone"]["spec"]))
    if data is None:  # a fine-tuned head runs on the per-token states the pass cached
        data = prepared_from_run(run_dir, with_token_states=loaded.manifest["head"].get("kind") == "blocks")
    test = data.rows.iloc[data.idx("test")].reset_index(drop=True).copy()
    pinned = next((p for p in (REPO_ROOT / "reports" / f"split_{loaded.name}.json",
                               REPO_ROOT / "reports" / loaded.name / f"split_{loaded.name}.json") if p.exists()), None)
    if end_to_end and pinned is not None:  # the cache may have grown since training: score the bundle's own test split
        ids = set(json.loads(pinned.read_text())["ids"]["test"])
        test = test[test["id"].isin(ids)].reset_index(drop=True)
    test["y"] = (test["label"] == "ai").astype(int)
    test["true_label"] = test["label"]
    if end_to_end:
        scores = det.score_many(test["text"].tolist())
        feats = [s.features for s in scores]
        test["label"] = [s.label for s in scores]
        test["n_tokens"] = [s.n_tokens for s in scores]
    else:
        feats = _cached_features(det, data)
        test["n_tokens"] = [int(f["n_tokens"]) for f in feats]
    scored = [i for i, f in enumerate(feats) if f]  # end to end, abstained texts may have no features

    def proba(comb) -> np.ndarray:
        p = np.full(len(feats), np.nan)
        if scored:
            p[scored] = comb.predict_rows([feats[i] for i in scored])
        return p

    test["p"] = proba(loaded.combiner)
    if not end_to_end:
        test["label"] = [decide(p, n, det.min_tokens, det.threshold_ai, det.threshold_human)
                         for p, n in zip(test["p"], test["n_tokens"])]
    ablation = {"combined": test["p"].to_numpy(), **{k: proba(c) for k, c in loaded.ablation.items()}}
    ablation.update(extra_ablation or {})
    info = {"bundle": loaded.name, "backbone": loaded.manifest["backbone"]["identity"],
            "precision": loaded.manifest.get("precision"),
            "mode": "end_to_end" if end_to_end else "cached_lm_pass", "thresholds": loaded.manifest["thresholds"],
            "calibration_method": loaded.combiner.method_, **(extra or {})}
    if generalization is None and (Path(reports_dir) / "generalization.json").exists():
        generalization = json.loads((Path(reports_dir) / "generalization.json").read_text())
    if generalization is not None:
        (Path(reports_dir)).mkdir(parents=True, exist_ok=True)
        (Path(reports_dir) / "generalization.json").write_text(json.dumps(json_safe(generalization), indent=1))
    return write_report(Path(reports_dir), test, ablation=ablation, headline_name="combined", extra=info,
                        abstain_col="label", generalization=json_safe(generalization) if generalization else None)


def prepared_from_run(run_dir: Path, *, with_token_states: bool = False) -> Prepared:
    """The prepared data of a finished training run (its config.json pins what was sampled); with
    ``with_token_states``, each record also keeps the per-token hidden states the pass cached."""
    key = json.loads((Path(run_dir) / "config.json").read_text())
    cfg = Config(name=Path(run_dir).name, lm=key["lm"], sources=tuple(key["sources"]), lang=key["lang"],
                 sizes=tuple(key["sizes"]), source_weights=tuple(key["source_weights"].items()),
                 max_tokens=key["max_tokens"], min_chars=key.get("min_chars", 0), seed=key["seed"],
                 runs_dir=str(Path(run_dir).parent), partial=True,
                 heads=("probe", "blocks") if with_token_states else ("probe",))
    return prepare(cfg, Path(run_dir))[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="smollm2-en", help="bundle name or path")
    ap.add_argument("--runs-dir", default=str(REPO_ROOT / "runs"), help="where `training.train` left its run")
    ap.add_argument("--reports-dir", default=None, help="default: reports/ for smollm2-en, reports/<name>/ for any "
                                                        "other bundle (+ end_to_end/ with --end-to-end)")
    ap.add_argument("--end-to-end", action="store_true", help="re-score raw test texts with the Detector")
    a = ap.parse_args(argv)
    name = Bundle.load(resolve_bundle_path(a.bundle)).name
    base = REPO_ROOT / "reports" / ("" if name == "smollm2-en" else name)
    reports = Path(a.reports_dir or base / ("end_to_end" if a.end_to_end else ""))
    command = "python -m training.evaluate" + f" --bundle {a.bundle}" * (name != "smollm2-en") + \
        " --end-to-end" * a.end_to_end
    # keep what only the training run knows (split sizes, the LM-pass cache, the command that trained it)
    previous = reports / "eval.json"
    kept = {k: v for k, v in (json.loads(previous.read_text()).get("extra", {}) if previous.exists() else {}).items()
            if k in ("n", "lm_pass_cache", "calibration_cv_brier", "combiner_C", "command")}
    report = evaluate_bundle(a.bundle, Path(a.runs_dir) / name, reports, end_to_end=a.end_to_end,
                             extra={**kept, "report_command": command})
    print({k: report["overall"][k] for k in ("auroc", "tpr_at_1fpr", "tpr_at_5fpr", "ece", "brier")},
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
