"""What knowing the collection is worth: per-source experts, routed and gated, in distribution and on sources
never seen.

The shipped model (``zero_shot+probe by length``) is one combiner fit on every source. This study fits the same
form on each training source alone (an *expert*) and scores a text three ways:

- **oracle**: by its own source's expert. In distribution only, and an upper bound: it is told the collection.
- **routed**: the experts weighed by a router's probabilities (a multinomial logistic regression on the pooled
  states of the probe's depths, predicting the source).
- **gated** at power k: ``pooled + max_s p(s | x)^k x (routed - pooled)``, so the router's confidence decides
  how far a collection's expert overrides the pooled model; large k falls back to the pooled model.

Each is measured in distribution (fit on every source's fit rows, tested on the test split) and by
leave-one-source-out (a fold's experts and router see only its five training sources), with the zero-shot guard.
It also measures the calibration trade the in-distribution ECE bar asks about: the shipped form's ECE in
distribution and pooled over the held-out folds, under a calibration fit on out-of-source scores (what ships),
under one fit in distribution, and under one fit on both.

Run: ``python -m training.source_experts --no-ddl`` (the six-source sample and train pass, cached by
``python -m training.train --six-source --no-ddl``); writes ``reports/source_experts.{md,json}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from detector.combiner import Calibrator
from training.data import REPO_ROOT
from training.generalization import rank01
from training.metrics import auroc as _auroc_p
from training.metrics import expected_calibration_error, json_safe, tpr_at_fpr
from training.six_source import (
    DEFAULT_PROBE,
    FoldEvidence,
    ProbeSetting,
    collect,
    continuation_records,
    cross_fitted_scores,
    describe,
    fit_rows,
    fold_scores,
    join_stack,
    join_train,
    origins,
    parser,
    roles,
    set_scores,
    train_records,
)

SHIPPED_FORM = "zero_shot+probe by length"
ROUTER_C = 1e-3  # the router's inverse regularisation on standardised pooled states
GATE_POWERS = (1, 4, 16)
GUARD_MARGIN = 0.02  # the zero-shot guard: never below the fold's best single zero-shot feature minus this


def gated(pooled: np.ndarray, experts: np.ndarray, router: np.ndarray, power: float | None) -> np.ndarray:
    """The pooled score moved toward the router-weighted experts by ``max_s p(s | x) ** power``; ``power`` None
    is the routed score itself (the experts weighed by the router, the pooled model ignored)."""
    routed = (router * experts).sum(axis=1)
    if power is None:
        return routed
    return pooled + router.max(axis=1) ** power * (routed - pooled)


@dataclass
class FoldParts:
    """One fold's raw scores of its test rows: the pooled model, each training source's expert (columns in
    ``sources`` order) and the router's source probabilities (same order)."""

    pooled: np.ndarray
    experts: np.ndarray
    router: np.ndarray


def pooled_states(records: list[dict], probe: ProbeSetting) -> np.ndarray:
    """The token-mean states of the probe's depths, one row per record (what the probe and the router read)."""
    return np.stack([r["pooled"][list(probe.depths)] for r in records]).reshape(len(records), -1).astype(np.float64)


def fold_parts(table: pd.DataFrame, records: list[dict], pooled: np.ndarray, fit: np.ndarray, test: np.ndarray,
               sources: Sequence[str], probe: ProbeSetting = DEFAULT_PROBE) -> FoldParts:
    """Beside the pooled model's scores of ``test``, fit an expert and the router on the rows of ``fit`` from
    ``sources`` and score ``test``."""
    y, src = table["y"].to_numpy(), table["source"].to_numpy()
    experts = np.zeros((len(test), len(sources)))
    for j, s in enumerate(sources):
        own = fit[src[fit] == s]
        experts[:, j] = set_scores(FoldEvidence(table, records, "all", own, 0, probe), SHIPPED_FORM, y, own, test)
    routed_rows = fit[np.isin(src[fit], sources)]
    states = pooled_states(records, probe)
    scale = StandardScaler().fit(states[routed_rows])
    router = LogisticRegression(C=ROUTER_C, max_iter=3000).fit(scale.transform(states[routed_rows]), src[routed_rows])
    order = [list(router.classes_).index(s) for s in sources]
    return FoldParts(pooled, experts, router.predict_proba(scale.transform(states[test]))[:, order])


def variants(parts: FoldParts) -> dict[str, np.ndarray]:
    """Every scoring of a fold's test rows this study compares, by name."""
    out = {"pooled (shipped form)": parts.pooled, "routed": gated(parts.pooled, parts.experts, parts.router, None)}
    out.update({f"gated k={k}": gated(parts.pooled, parts.experts, parts.router, k) for k in GATE_POWERS})
    return out


def auroc(y: np.ndarray, z: np.ndarray) -> float:
    """AUROC of raw scores (the metrics take probabilities; only the order matters)."""
    return _auroc_p(y, rank01(z))


def _rates(y: np.ndarray, z: np.ndarray) -> dict:
    return {"auroc": auroc(y, z), "tpr_at_1fpr": tpr_at_fpr(y, rank01(z), 0.01)}


def study(table: pd.DataFrame, records: list[dict], probe: ProbeSetting = DEFAULT_PROBE, seed: int = 0) -> dict:
    """Every table of the report (see the module docstring)."""
    y, src, split = table["y"].to_numpy(), table["source"].to_numpy(), table["split"].to_numpy()
    test_row = roles(table)[1]
    sources = sorted(set(src[test_row]))
    in_test = np.flatnonzero(test_row & (split == "test"))
    fit_all = fit_rows(table)
    ev = FoldEvidence(table, records, "all", fit_all, seed, probe)
    whole = fold_parts(table, records, set_scores(ev, SHIPPED_FORM, y, fit_all, in_test), fit_all, in_test,
                       sources, probe)
    own = np.array([sources.index(s) for s in src[in_test]])
    yt, st = y[in_test], src[in_test]
    oracle = whole.experts[np.arange(len(in_test)), own]
    in_dist = {name: _rates(yt, z) for name, z in variants(whole).items()}
    in_dist["oracle (told the source)"] = _rates(yt, oracle)
    routed = gated(whole.pooled, whole.experts, whole.router, None)
    per_source = {s: {"pooled": auroc(yt[st == s], whole.pooled[st == s]),
                      "own_expert": auroc(yt[st == s], oracle[st == s]), "routed": auroc(yt[st == s], routed[st == s]),
                      "router_accuracy": float((whole.router[st == s].argmax(1) == sources.index(s)).mean())}
                  for s in sources}
    loso: dict[str, dict[str, float]] = {}
    best: dict[str, float] = {}
    z_out, y_out = [], []
    for held in sources:
        fold = fold_scores(table, records, held, seed, (SHIPPED_FORM,), probe)  # the pipeline's own fold
        fit = np.flatnonzero(roles(table)[0] & (src != held) & (origins(table) != held))
        test = np.flatnonzero(test_row & (src == held))
        parts = fold_parts(table, records, fold[SHIPPED_FORM]["z"], fit, test, [s for s in sources if s != held],
                           probe)
        for name, z in variants(parts).items():
            loso.setdefault(name, {})[held] = auroc(y[test], z)
        best[held] = auroc(y[test], fold["best_zero_shot"]["z"])
        z_out.append(parts.pooled)
        y_out.append(y[test])
    table_rows = {name: {"by_source": per, "mean_auroc": float(np.mean(list(per.values()))),
                         "min_auroc": float(min(per.values())),
                         "guard": all(per[s] >= best[s] - GUARD_MARGIN for s in per),
                         "in_distribution": in_dist[name]} for name, per in loso.items()}
    oof = cross_fitted_scores(ev, SHIPPED_FORM, y, fit_all, seed)
    return {"in_distribution": in_dist, "in_distribution_by_source": per_source, "leave_one_source_out": table_rows,
            "best_zero_shot_by_fold": best,
            "calibration": calibration_trade(whole.pooled, yt, np.concatenate(z_out), np.concatenate(y_out),
                                             oof, y[fit_all]),
            "router_C": ROUTER_C, "gate_powers": list(GATE_POWERS), "n_test": int(len(in_test)),
            "n_fit": int(len(fit_all))}


def calibration_trade(z_in: np.ndarray, y_in: np.ndarray, z_out: np.ndarray, y_out: np.ndarray, z_fit: np.ndarray,
                      y_fit: np.ndarray) -> dict:
    """ECE of the shipped form in distribution (``z_in``) and pooled over the held-out folds (``z_out``), under
    a Platt line fit on the held-out folds' scores (out of source, what ships), one fit on the fit rows'
    cross-fitted scores (``z_fit``, in distribution), and one fit on both with each half weighing the same:
    which bars one calibration can meet."""
    both_z, both_y = np.concatenate([z_out, z_fit]), np.concatenate([y_out, y_fit])
    weight = np.concatenate([np.full(len(z_out), 0.5 / len(z_out)), np.full(len(z_fit), 0.5 / len(z_fit))])
    both = LogisticRegression(C=1e6).fit(both_z[:, None], both_y, sample_weight=weight * len(both_z))
    calibrated = {"out_of_source": Calibrator("platt").fit(z_out, y_out).transform,
                  "in_distribution": Calibrator("platt").fit(z_fit, y_fit).transform,
                  "both, each half weighing the same": lambda z: both.predict_proba(z[:, None])[:, 1]}
    return {name: {"ece_in_distribution": expected_calibration_error(y_in, p(z_in)),
                   "ece_out_of_source_pooled": expected_calibration_error(y_out, p(z_out))}
            for name, p in calibrated.items()}


def markdown(r: dict) -> str:
    """The report as Markdown."""
    lines = ["# What knowing the collection is worth: per-source experts", "",
             f"Command: `{r.get('command', 'python -m training.source_experts')}`. CPU: {r.get('cpu', '?')}. "
             f"{r.get('seconds', 0) / 60:.1f} min.", "",
             "Each expert is the shipped form (`zero_shot+probe by length`) fit on one training source alone. "
             f"The router is a logistic regression (C={r['router_C']}) on the pooled states predicting the source. "
             "Gated at k: pooled + max p(s|x)^k x (routed - pooled). "
             f"In distribution: fit on {r['n_fit']} rows of every source, tested on {r['n_test']} test-split "
             "texts.", "",
             "## In distribution, by source", "",
             "| source | pooled model | own-source expert (oracle) | routed | router picks the source |",
             "|---|---|---|---|---|"]
    for s, v in r["in_distribution_by_source"].items():
        lines.append(f"| {s} | {v['pooled']:.3f} | {v['own_expert']:.3f} | {v['routed']:.3f} | "
                     f"{v['router_accuracy']:.0%} |")
    o = r["in_distribution"]["oracle (told the source)"]
    lines += ["", f"Pooled over the test split, the oracle reaches AUROC {o['auroc']:.3f} (TPR at 1% FPR "
              f"{o['tpr_at_1fpr']:.3f}).", "", "## Leave-one-source-out against in distribution", "",
              "| scoring | LOSO mean | worst | guard | " + " | ".join(r["best_zero_shot_by_fold"])
              + " | in-distribution AUROC | TPR at 1% FPR |",
              "|---|---|---|---|" + "---|" * len(r["best_zero_shot_by_fold"]) + "---|---|"]
    for name, v in r["leave_one_source_out"].items():
        lines.append(f"| {name} | {v['mean_auroc']:.3f} | {v['min_auroc']:.3f} | {'yes' if v['guard'] else 'no'} | "
                     + " | ".join(f"{a:.3f}" for a in v["by_source"].values())
                     + f" | {v['in_distribution']['auroc']:.3f} | {v['in_distribution']['tpr_at_1fpr']:.3f} |")
    best = " | ".join(f"{a:.3f}" for a in r["best_zero_shot_by_fold"].values())
    lines.append(f"| best zero-shot feature | | | | {best} | | |")
    lines += ["", "## The calibration trade (shipped form)", "",
              "One Platt line over every held-out fold's scores (the pipeline fits each fold's line on the other "
              "folds' scores, a little stricter), or over the in-distribution fit rows' cross-fitted scores.", "",
              "| Platt line fit on the scores | ECE in distribution | ECE pooled over the held-out folds |",
              "|---|---|---|"]
    for name, v in r["calibration"].items():
        lines.append(f"| {name.replace('_', ' ')} | {v['ece_in_distribution']:.3f} | "
                     f"{v['ece_out_of_source_pooled']:.3f} |")
    return "\n".join(lines) + "\n"


def shipped_probe(eval_json: Path) -> ProbeSetting:
    """The probe setting the shipped bundle's report chose (``reports/eval.json``), so the pooled model here is
    the shipped one; the default setting when there is no report."""
    if not eval_json.exists():
        return DEFAULT_PROBE
    chosen = json.loads(eval_json.read_text())["probe"]
    return ProbeSetting(tuple(chosen["depths"]), chosen["C"])


def main(argv: list[str] | None = None) -> int:
    ap: argparse.ArgumentParser = parser()
    ap.set_defaults(report=str(REPO_ROOT / "reports" / "source_experts"), no_ddl=True)
    args = ap.parse_args(argv)
    args.no_ddl = True  # the experts read no tuned discrepancy
    t0 = time.perf_counter()
    got = collect(args)
    train = train_records(args, got.df, got.lm) if got is not None and args.train_fit else None
    if got is None or (args.train_fit and train is None):
        print("[source-experts] a pass stopped; rerun to resume", file=sys.stderr)
        return 1
    if train is not None:
        got.table, got.records = join_train(got.table, got.records, *train)
    extra = continuation_records(args, got)
    if extra is not None:
        got.table, got.records = join_stack(got.table, got.records, *extra)
    report = study(got.table, got.records, shipped_probe(Path(args.report).parent / "eval.json"))
    describe(report, args, got, time.perf_counter() - t0, "python -m training.source_experts", argv)
    out = Path(args.report)
    out.with_suffix(".json").write_text(json.dumps(json_safe(report), indent=1))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
