"""Train a bundle from scratch, resumably: ``python -m training.train`` (see --help).

Steps (an interrupted run picks up where it stopped), one module each:
1. ``training.rows``: load the texts of one language, split by prompt into train/cal/test, sample
   (``runs/<name>/rows.jsonl``, ``split.json``);
2. ``training.lm_pass``: one LM pass per text -> token statistics and pooled hidden states, cached in resumable
   shards under the user cache directory (``training.featurize``); ``training.prepared`` turns the cache into
   what the fits read;
3. ``training.design_grid``: choose the head (linear or routed probe: regularisation, depths; with ``--heads
   probe routed blocks`` also fine-tuned top blocks, see ``training.designs``) and its blend weight toward the
   best zero-shot feature by the leave-one-source-out table, never by the test split;
4. ``training.fit``: fit the head, the calibrated combiner and the segment model on train + cal (cal only for a
   fine-tuned head, whose training-row logits are in-sample);
5. ``training.thresholds``: set the decision thresholds and the ``min_tokens`` abstention on the same rows;
6. ``training.bundle_writer``: write the bundle (``detector/bundles/<name>/``); ``training.evaluate`` then
   evaluates it on test (``reports/``).

``python -m training.train --six-source [options of training.ship_evidence]`` instead trains the six-source
design (``training.ship_evidence``; what ``smollm2-en`` ships): evidence from six sources, a
probe and the zero-shot features (and the DDL fork when the leave-one-source-out table keeps it), calibrated on
out-of-source scores.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from detector.combiner import CalibratedCombiner
from detector.lm import load_lm
from training.bundle_writer import bundle_manifest, write_bundle
from training.config import CALIBRATE_ON, CALIBRATIONS, COMBINER_FEATURES, NOT_SHIPPED, Config
from training.data import split_manifest
from training.design_grid import MAX_HELDOUT_AI_FPR, add_heldout_ai_fpr, choose_design, generalization, select_design
from training.designs import ProbeDesign, combiner_rows
from training.evaluate import evaluate_bundle
from training.featurize import normalized
from training.fit import fit_combiners, fit_head, fit_segment_model
from training.lm_pass import run_pass
from training.prepared import Prepared, prepare
from training.rows import prepare_rows
from training.thresholds import (
    MIN_GROUP_HUMANS,
    TARGET_FPR,
    ai_line,
    choose_min_tokens,
    decision_thresholds,
    human_groups,
    measure_min_tokens,
    unseen_source_line,
)

# Names the pipeline's modules define that callers import from here (``from training.train import ...``).
__all__ = [
    "COMBINER_FEATURES", "MAX_HELDOUT_AI_FPR", "MIN_GROUP_HUMANS", "NOT_SHIPPED", "TARGET_FPR", "Config",
    "Prepared", "ProbeDesign", "add_heldout_ai_fpr", "ai_line", "choose_design", "fit_combiners", "generalization",
    "human_groups", "main", "parse_args", "prepare", "run", "unseen_source_line",
]


def run(cfg: Config) -> dict:
    """The whole pipeline; returns the evaluation summary."""
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.runs_dir) / cfg.name
    lm, data, folder = prepare(cfg, run_dir)
    idx = {s: data.idx(s) for s in ("train", "cal", "test")}
    print(f"[train] LM {lm.identity} ({lm.precision}); train/cal/test {[len(v) for v in idx.values()]}",
          file=sys.stderr)

    # Calibrating on the answered texts needs the abstention first: then every calibration below learns from,
    # and every fold's `ai` line guards, the texts of at least `min_tokens` (``answered_from``).
    answered_from = 0
    if cfg.calibrate_on == "answered":
        min_tokens, length_table = measure_min_tokens(cfg, data, idx)
        answered_from = min_tokens
        print(f"[train] min_tokens {min_tokens}: {length_table}", file=sys.stderr)

    # Design choice (probe regularisation and depth, blend weight toward the zero-shot model) by the
    # leave-one-source-out table, never by the test split.
    chosen = select_design(cfg, data, answered_from)
    design, weight, calibration = chosen.design, chosen.weight, chosen.calibration

    # The chosen design fit for shipping: head, then combiners on train + cal (cal only for fine-tuned blocks).
    head, logits = fit_head(data, idx["train"], design, cfg)
    fit = combiner_rows(design, idx["train"], idx["cal"])
    fit_rows = [dict(data.zs_rows[i], classifier_logit=float(logits[i])) for i in fit]
    y_fit = data.y[fit]
    cal_rows = fit_rows[len(fit) - len(idx["cal"]):]
    unblended, features_only, single = fit_combiners(data, logits, fit, cfg.seed, design.zero_shot, calibration,
                                                     answered_from)
    combined = CalibratedCombiner.blend(unblended, single, weight, y_fit)
    classifier_only = CalibratedCombiner(["classifier_logit"], calibration=calibration, random_state=cfg.seed,
                                         calibrate_from=answered_from)
    classifier_only.fit(classifier_only.matrix(fit_rows), y_fit, data.n_tokens[fit])

    # Decision lines on the shipped model's out-of-fold probabilities.
    if not answered_from:  # calibrated on every length: the abstention is measured on the shipped model
        min_tokens, length_table = choose_min_tokens(data.n_tokens[fit], y_fit, combined.oof_proba_)
    thresholds = decision_thresholds(cfg, data, fit, combined.oof_proba_, chosen.unseen_p, min_tokens, length_table,
                                     answered_from)

    segment = fit_segment_model(data, idx["cal"], design, head, cfg.seed)
    manifest = bundle_manifest(cfg, lm, data, chosen, head, combined, segment, thresholds, fit, cal_rows)
    bundle = write_bundle(cfg, manifest, combined, segment, head,
                          ablation={"features_only": features_only, "classifier_only": classifier_only,
                                    "combined_unblended": unblended,
                                    f"best_feature_{single.feature_names[0]}": single})

    Path(cfg.reports_dir).mkdir(parents=True, exist_ok=True)
    (Path(cfg.reports_dir) / f"split_{cfg.name}.json").write_text(json.dumps(split_manifest(data.rows), default=str))
    extra = {"n": {s: int(len(v)) for s, v in idx.items()}, "lm_pass_cache": str(folder),
             "calibration_cv_brier": combined.calibration_scores_, "combiner_C": combined.C_,
             "command": cfg.command or "python -m training.train"}
    report = evaluate_bundle(bundle.path, run_dir, Path(cfg.reports_dir), extra=extra, generalization=chosen.report,
                             data=data)
    bundle.metrics = json.loads(json.dumps({"overall": report["overall"], "ablation": report.get("ablation"),
                                            "leave_one_source_out": report.get("leave_one_source_out"),
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
    ap.add_argument("--min-chars", type=int, default=d.min_chars, help="skip texts shorter than this (characters)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--runs-dir", default=d.runs_dir)
    ap.add_argument("--bundle-dir", default=None)
    ap.add_argument("--reports-dir", default=None, help="default: reports/ for the shipped smollm2-en, "
                                                        "reports/<name>/ for any other bundle")
    ap.add_argument("--device", default=None)
    ap.add_argument("--lang", default=d.lang, help="language of the texts used (and of the bundle)")
    ap.add_argument("--pass-only", action="store_true", help="only run (or resume) the cached LM pass")
    ap.add_argument("--partial", action="store_true", help="train on the texts already in the LM-pass cache "
                                                           "instead of finishing the pass first")
    ap.add_argument("--heads", nargs="+", default=list(d.heads), choices=["probe", "routed", "blocks"],
                    help="head families in the design grid (routed: one probe per source behind a source router; "
                         "blocks: fine-tuned top blocks, much slower)")
    ap.add_argument("--block-k", default=",".join(map(str, d.block_k)), help="depths of fine-tuned blocks heads")
    ap.add_argument("--calibration", nargs="+", default=list(d.calibration), choices=list(CALIBRATIONS),
                    help="document calibrations the design grid tries: one Platt line, platt_length (its slope "
                         "depends on length)")
    ap.add_argument("--exclude-features", nargs="*", default=list(d.exclude_features), choices=list(COMBINER_FEATURES),
                    help="zero-shot features kept out of the combiner (default: the per-character ones, see "
                         "NOT_SHIPPED; give the flag with no names to use every feature)")
    ap.add_argument("--calibrate-on", default=d.calibrate_on, choices=list(CALIBRATE_ON),
                    help="texts the document calibration learns from: all, or only those the detector answers "
                         "(>= min_tokens, measured first; folds and `ai` lines follow)")
    ap.add_argument("--worker", default="0/1", help="i/n: this process takes every n-th text of the pass "
                                                    "(run n processes with --pass-only and OMP_NUM_THREADS=1)")
    a = ap.parse_args(argv)
    args = sys.argv[1:] if argv is None else list(argv)
    weights = d.source_weights if a.sources == list(d.sources) else ()  # () = equal weights
    return Config(name=a.name, lm=a.lm, data_dir=a.data_dir, sources=tuple(a.sources),
                  sizes=tuple(int(x) for x in a.sizes.split(",")), source_weights=weights,
                  max_tokens=a.max_tokens, min_chars=a.min_chars, batch_size=a.batch_size,
                  runs_dir=a.runs_dir,
                  bundle_dir=a.bundle_dir, device=a.device, lang=a.lang,
                  reports_dir=a.reports_dir or (d.reports_dir if a.name == d.name
                                                else str(Path(d.reports_dir) / a.name)),
                  pass_only=a.pass_only, partial=a.partial, worker=int(a.worker.split("/")[0]),
                  n_workers=int(a.worker.split("/")[1]), pausable=True, heads=tuple(a.heads),
                  block_k=tuple(int(x) for x in a.block_k.split(",")), calibration=tuple(a.calibration),
                  exclude_features=tuple(a.exclude_features), calibrate_on=a.calibrate_on,
                  command=" ".join(["python -m training.train", *map(shlex.quote, args)]))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--six-source" in args:  # the six-source design: DDL folds, six sources, out-of-source calibration
        from training.ship_evidence import main as ship

        return ship([a for a in args if a != "--six-source"])
    cfg = parse_args(argv)
    if cfg.pass_only:
        rows = prepare_rows(cfg, Path(cfg.runs_dir) / cfg.name)
        run_pass(cfg, load_lm(cfg.lm, device=cfg.device), normalized(rows["text"].tolist()))
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
