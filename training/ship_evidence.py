"""Ship the six-source design: ``python -m training.ship_evidence`` (same options as ``training.six_source``).

Runs ``training.six_source`` (evidence pass, leave-one-source-out tables, choice of evidence set), then fits the
shipped model and writes it as a bundle (``training.evidence_bundle``) with ``reports/eval.json``:

* the combiner is fit on the fit rows of all six sources: the train pass with ``--train-fit`` (the folds of
  the leave-one-source-out table are then fit on it too), else the cal-split texts, with the tuned discrepancy
  of the adapter trained on every source's train pairs and a witness fit on the same texts; a blend
  (``"<set> blend <w>"``) is shipped as one linear model (``CalibratedCombiner.blend``);
* its calibration is fit on out-of-source scores: the leave-one-source-out folds' raw scores for the texts each
  fold held out (``CalibratedCombiner.recalibrate``), the only scores that show what a new collection looks like;
* the `ai` line is the strictest 1%-FPR line over those held-out humans, per source and per length bucket, and
  the `human` line keeps 1% of the held-out AI texts under it;
* ``reports/eval.json`` holds the test split scored by the shipped model (``overall``, per source, domain,
  generator, variant, length; ROC and reliability plots) and the leave-one-source-out keys of the six-source
  report (``leave_one_source_out``, ``leave_one_source_out_pooled``, ``leave_one_source_out_domains``, ...).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from detector.bundle import Bundle, resolve_bundle_path
from detector.combiner import CalibratedCombiner
from detector.detector import decide
from training.bundle_writer import feature_ranges
from training.data import REPO_ROOT, source_licences
from training.ddl import adapter_factors
from training.ddl_loso import SIX_SOURCES
from training.evidence_bundle import evidence_bundle
from training.featurize import pooled_layers
from training.fit import LOG_FEATURES
from training.metrics import json_safe
from training.model_card import write_model_card
from training.report import write_report
from training.six_source import (
    COMBINER_C,
    DEFAULT_PROBE,
    EVIDENCE_SETS,
    LENGTH_SLOPED,
    MIN_GROUP_HUMANS,
    TARGET_FPR,
    TRAIN_FIT_SETS,
    ZERO_SHOT,
    Collected,
    FoldEvidence,
    ProbeSetting,
    adapter_path,
    all_source_rows,
    best_feature,
    collect,
    describe,
    fit_rows,
    full_analysis,
    held_out_scores,
    line_groups,
    parser,
    roles,
    set_names,
    verdict_lines,
)
from training.six_source import write_report as write_six_source_report

# Keys of the six-source report copied into reports/eval.json (the leave-one-source-out evidence).
LOSO_KEYS = ("chosen", "chosen_rule", "ablation", "guard_holds", "best_zero_shot_features", "leave_one_source_out",
             "leave_one_source_out_pooled", "leave_one_source_out_domains", "leave_one_generator_out",
             "in_distribution", "n", "n_fit", "min_tokens", "sample_fit", "probe", "probe_grid")
# Tables of the six-source report kept under a prefixed name (eval.json's own are the test split's).
LOSO_RENAMED = {"by_variant": "leave_one_source_out_by_variant", "by_length": "leave_one_source_out_by_length"}


def analyse_z(got: Collected, name: str, report_probe: dict) -> np.ndarray:
    """The held-out raw scores of one evidence set (each source's scored texts, by its fold's model)."""
    sets = TRAIN_FIT_SETS if "role" in got.table else tuple(EVIDENCE_SETS)
    probe = ProbeSetting(tuple(report_probe["depths"]), report_probe["C"])
    return held_out_scores(got.table, got.records, sets, probe)[0][name]


def shipped_names(names: tuple[str, ...]) -> list[str]:
    """The combiner's feature names as the detector provides them: the probe's logit is its head's
    ``classifier_logit``."""
    return ["classifier_logit" if n == "probe_logit" else n for n in names]


def shipped_combiner(ev: FoldEvidence, name: str, y: np.ndarray, fit: np.ndarray) -> CalibratedCombiner:
    """The evidence set ``name`` (``six_source.set_scores``' model) as one ``CalibratedCombiner`` fit on ``fit``."""
    base, _, w = name.partition(" blend ")

    def fitted(cols: tuple[str, ...], length_slopes: bool = False) -> CalibratedCombiner:
        X = np.column_stack([ev.columns[c] for c in cols])
        return CalibratedCombiner(shipped_names(cols), LOG_FEATURES, C=COMBINER_C, calibration="platt",
                                  length_slopes=length_slopes).fit(X[fit], y[fit], ev.n_tokens[fit])

    full = fitted(EVIDENCE_SETS[base], base in LENGTH_SLOPED)
    if not w:
        return full
    return CalibratedCombiner.blend(full, fitted((best_feature(ev, y, fit),)), float(w), y[fit])


def shipped_model(got: Collected, name: str, z_heldout: np.ndarray, min_tokens: int,
                  probe: ProbeSetting = DEFAULT_PROBE,
                  target: float = TARGET_FPR) -> tuple[CalibratedCombiner, FoldEvidence, dict, dict]:
    """The combiner fit on ``all_source_rows`` (shipped adapter), recalibrated out of source on the scored
    rows' held-out scores ``z_heldout``; its lines and the held-out probabilities they were set on."""
    table, y_all = got.table, got.table["y"].to_numpy()
    fit = fit_rows(table)
    _, test_row = roles(table)
    ev = FoldEvidence(table, got.records, "all", fit, probe=probe)
    combiner = shipped_combiner(ev, name, y_all, all_source_rows(table, name))
    scored = table[test_row]
    y, src = scored["y"].to_numpy(), scored["source"].to_numpy()
    n = scored["n_tokens"].to_numpy().astype(np.float64)
    combiner.recalibrate(z_heldout, y, n)
    p = combiner.calibrator_.transform(z_heldout, n)
    groups = line_groups(src, n, min_tokens)
    t_ai, t_human = verdict_lines(p, y, n, groups, min_tokens, target)
    kept = {g: np.sort(p[m & (y == 0)]).tolist() for g, m in groups.items() if (m & (y == 0)).sum() >= MIN_GROUP_HUMANS}
    thresholds = {"ai": t_ai, "human": t_human, "target_fpr": target, "target_fnr": TARGET_FPR,
                  "min_tokens": int(min_tokens),
                  "ai_rule": f"strictest {target:.1%}-FPR line over the held-out humans of every source and every "
                             f"length bucket from min_tokens on (>= {MIN_GROUP_HUMANS} humans), each scored by the "
                             "leave-one-source-out model fit without its source and calibrated out of source",
                  "calibrated_on": "leave-one-source-out raw scores of the texts each fold held out"}
    probs = {"human": np.sort(p[y == 0]).tolist(), "ai": np.sort(p[y == 1]).tolist(), "ai_line_groups": kept}
    return combiner, ev, thresholds, probs


def shipped_feature_ranges(ev: FoldEvidence, names: list[str], y: np.ndarray, fit: np.ndarray) -> dict:
    """The page's typical human and AI ranges of every column the bundle provides, from the fit rows."""
    rows = [{shipped_names((c,))[0]: float(ev.columns[c][i]) for c in names} for i in fit]
    return feature_ranges(rows, y[fit])


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    ap.description = __doc__.split("\n")[0]
    ap.add_argument("--base-bundle", default="smollm2-en", help="bundle whose probe head and sentence model stay")
    ap.add_argument("--bundle-dir", default=str(REPO_ROOT / "detector" / "bundles" / "smollm2-en"))
    ap.add_argument("--reports-dir", default=str(REPO_ROOT / "reports"))
    ap.add_argument("--evidence", choices=set_names(tuple(EVIDENCE_SETS)), default=None,
                    help="ship this evidence set instead of the one the leave-one-source-out table chooses")
    ap.add_argument("--end-to-end", type=int, default=300, help="test texts re-scored through the Detector (0: none)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    got = collect(args)
    if got is None:
        return 0
    report = full_analysis(args, got)
    z = report.pop("_z")
    describe(report, args, got, time.perf_counter() - t0, "python -m training.ship_evidence", argv)
    write_six_source_report(Path(args.report), report)
    if args.evidence:  # a set named on the command line instead of the table's choice (for measurements)
        report["chosen"], report["chosen_rule"] = args.evidence, "named with --evidence"
        z = analyse_z(got, args.evidence, report["probe"])
    probe_setting = ProbeSetting(tuple(report["probe"]["depths"]), report["probe"]["C"])
    target = report["by_evidence_set"].get(report["chosen"], report)["line_target"]
    combiner, ev, thresholds, probs = shipped_model(got, report["chosen"], z, args.min_tokens, probe_setting, target)
    names = tuple("probe_logit" if n == "classifier_logit" else n for n in combiner.feature_names)
    probe = ev.probe_ if "probe_logit" in names else None
    depths = [pooled_layers(got.lm.num_layers)[i] for i in probe_setting.depths]
    if probe is not None and list(probe.layers) != depths:
        raise SystemExit(f"the probe was fit on pooled depths {depths}, not {probe.layers}: set POOLED_LAYERS")
    factors, scale, ddl_setting = None, 0.0, {}
    if "tuned_discrepancy" in names:  # only a combiner reading the tuned fork ships (and needs) the adapter
        adapter = adapter_path(got.lm, got.df, got.cfg, args.pairs, None, args.ddl_epoch)
        factors, scale = adapter_factors(torch.load(adapter, weights_only=True), got.cfg)
        ddl_setting = {"adapter_sources": list(SIX_SOURCES), **report["setting"]["ddl"], "adapter_key": adapter.name}
    base = Bundle.load(resolve_bundle_path(args.base_bundle))
    data = {"sources": list(SIX_SOURCES), "lang": "en", "licences": source_licences(SIX_SOURCES, args.data_dir),
            "counts": {"evidence_texts": report["n"],
                       "fit_texts": int(len(all_source_rows(got.table, report["chosen"]))),
                       "ddl_pairs": None if args.no_ddl else args.pairs},
            "split": "grouped by pair_id (prompt when null), hashed with seed; layout shortcuts stripped "
                     "(training.shortcuts)"}
    if args.self_continuation:  # text this project made: it carries the licences of the texts it continued
        data["generated"] = {"self_continuation": {
            "what": "the backbone's continuations of train-split human prefixes of the six sources, with those "
                    "human texts, cut to the same length (training.self_continuation)",
            "prefixes_per_source": args.self_continuation,
            "pairs": int((got.table["source"] == "self_continuation").sum() // 2)}}
    bundle = evidence_bundle(base, Path(args.bundle_dir), combiner=combiner, factors=factors, scale=scale,
                             k=got.cfg.k, ddl_setting=ddl_setting,
                             witness_beta=None if ev.witness_ is None else ev.witness_.beta_,
                             thresholds=thresholds, calibration_probs=probs, probe=probe, data=data,
                             precision=got.lm.precision, design=f"six-source evidence: {report['chosen']}",
                             feature_ranges=shipped_feature_ranges(ev, [*ZERO_SHOT, "probe_logit"],
                                                                   got.table["y"].to_numpy(), fit_rows(got.table)))
    eval_report = write_eval(got, bundle, combiner, ev, names, thresholds, report, Path(args.reports_dir))
    bundle.metrics = json_safe({"overall": eval_report["overall"], "leave_one_source_out":
                                report["leave_one_source_out"], "thresholds": thresholds})
    bundle.save()
    write_model_card(bundle, eval_report)
    print(f"[ship] bundle written to {bundle.path}", file=sys.stderr)
    if args.end_to_end:
        end_to_end(got, bundle, eval_report, args.end_to_end, Path(args.reports_dir) / "end_to_end")
    return 0


def end_to_end(got: Collected, bundle: Bundle, eval_report: dict, n: int, out_dir: Path) -> dict:
    """Re-score ``n`` test texts (a seeded sample) from their raw text with the saved bundle through
    ``Detector.score_many``, as a user would: checks that serving gives what training measured."""
    from detector.detector import Detector

    table = got.table[roles(got.table)[1]]
    test = table[table["split"] == "test"].sample(n=min(n, int((table["split"] == "test").sum())), random_state=0)
    det = Detector(Bundle.load(bundle.path), got.lm)
    scores = det.score_many(test["text"].tolist())
    df = test.drop(columns=["text"]).reset_index(drop=True).copy()
    df["p"] = [np.nan if s.prob_ai is None else s.prob_ai for s in scores]
    df["true_label"] = df["label"]
    df["label"] = [s.label for s in scores]
    df["n_tokens"] = [s.n_tokens for s in scores]
    extra = {"bundle": bundle.name, "mode": "end_to_end", "thresholds": bundle.manifest["thresholds"],
             "note": f"{len(df)} test texts re-scored from raw text by Detector.score_many"}
    return write_report(out_dir, df, ablation={}, extra=extra, abstain_col="label")


def write_eval(got: Collected, bundle: Bundle, combiner: CalibratedCombiner, ev: FoldEvidence,
               names: tuple[str, ...], thresholds: dict, report: dict, reports_dir: Path) -> dict:
    """``reports/eval.json`` (and plots): the test split scored by the shipped model, plus the six-source keys."""
    table = got.table
    test = np.flatnonzero(roles(table)[1] & (table["split"].to_numpy() == "test"))
    X = np.column_stack([ev.columns[c] for c in names])[test]
    df = table.iloc[test].reset_index(drop=True).copy()
    df["p"] = combiner.predict_proba(X, df["n_tokens"].to_numpy())[:, 1]
    df["true_label"] = df["label"]
    df["label"] = [decide(p, n, thresholds["min_tokens"], thresholds["ai"], thresholds["human"])
                   for p, n in zip(df["p"], df["n_tokens"])]
    extra = {"bundle": bundle.name, "backbone": got.lm.identity, "precision": got.lm.precision,
             "thresholds": thresholds, "command": report["command"], "cpu": report["cpu"],
             "note": "test split of the six-source sample, scored by the shipped combiner (out-of-source "
                     "calibration); see leave_one_source_out for sources it never saw"}
    out = write_report(reports_dir, df.drop(columns=["text"]), ablation={}, extra=extra,
                       abstain_col="label")
    out.update({k: report[k] for k in LOSO_KEYS if k in report})
    out.update({new: report[old] for old, new in LOSO_RENAMED.items() if old in report})
    out = json_safe(out)
    (reports_dir / "eval.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
