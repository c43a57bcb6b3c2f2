"""Write the test-set evaluation (eval.json, eval.md and plots) for one trained detector.

Model-agnostic: it only needs the true labels, the headline model's P(AI), the P(AI) of each
ablation model on the same rows, and the grouping columns, so the same report serves every
training run and the numbers in the markdown always match the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
from sklearn.metrics import roc_curve

from detector.score import AI, HUMAN, LABELS
from training.metrics import (
    LENGTH_BUCKET_EDGES,
    LENGTH_BUCKET_LABELS,
    UNKNOWN_LENGTH,
    bootstrap_intervals,
    by_group,
    json_safe,
    length_bucket,
    reliability_bins,
    summarize,
)

GROUP_SECTIONS: tuple[tuple[str, str], ...] = (
    ("by_source", "source"), ("by_domain", "domain"), ("by_generator", "generator"), ("by_variant", "variant"),
)
RELIABILITY_BINS = 15
MIN_GROUP_N = 20
VS_HUMANS_KEYS = ("auroc_vs_humans", "tpr_at_1fpr_vs_humans", "tpr_at_5fpr_vs_humans")
ROC_MIN_FPR = 1e-3
PLOTS = {"roc": "roc.png", "reliability": "reliability.png", "score_hist": "score_hist.png"}
_METRIC_COLUMNS = (("n", "n"), ("auroc", "AUROC"), ("tpr_at_1fpr", "TPR@1%FPR"), ("tpr_at_5fpr", "TPR@5%FPR"),
                   ("ece", "ECE"), ("brier", "Brier"), ("accuracy_at_0_5", "Acc@0.5"))


def _finite(p: np.ndarray) -> np.ndarray:
    return np.isfinite(np.asarray(p, dtype=float))


def _summary_with_coverage(y: np.ndarray, p: np.ndarray, intervals: bool = False) -> dict[str, Any]:
    """summarize() on the rows the model scored (finite p), plus how many it did not score; with
    ``intervals``, 95% bootstrap intervals as ``ci95`` (``bootstrap_intervals``)."""
    ok = _finite(p)
    out = {**summarize(y[ok], p[ok]), "n_unscored": int((~ok).sum())}
    if intervals:
        out["ci95"] = bootstrap_intervals(y[ok], p[ok])
    return out


def verdict_summary(labels: Sequence[Any] | pd.Series, y: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """Verdict-label counts by true class, and accuracy/coverage of the decided ("ai"/"human") rows.

    Every other label ("uncertain", "insufficient_text", ...) counts as an abstention, so coverage
    is the share of texts that got a decision and accuracy is measured only on those.
    """
    raw = pd.Series(labels).reset_index(drop=True).astype(object)
    lab = raw.where(raw.notna(), "missing").astype(str)
    truth = pd.Series(np.where(np.asarray(y) == 1, AI, HUMAN))
    present = list(dict.fromkeys([*[v for v in LABELS if v in set(lab)], *sorted(set(lab) - set(LABELS))]))
    counts = {v: {"ai": int(((lab == v) & (truth == AI)).sum()), "human": int(((lab == v) & (truth == HUMAN)).sum()),
                  "total": int((lab == v).sum())} for v in present}
    decided = lab.isin([AI, HUMAN])

    def rates(mask: pd.Series) -> dict[str, Any]:
        n, d = int(mask.sum()), int((mask & decided).sum())
        correct = int((mask & decided & (lab == truth)).sum())
        return {"n": n, "n_decided": d, "coverage": d / n if n else None, "accuracy": correct / d if d else None}

    return {"available": True, "counts": counts, **rates(pd.Series(True, index=lab.index)),
            "by_class": {AI: rates(truth == AI), HUMAN: rates(truth == HUMAN)}}


def add_vs_humans(rows: list[dict[str, Any]], df: pd.DataFrame, group_col: str) -> list[dict[str, Any]]:
    """Give AI-only groups (e.g. one generator) AUROC/TPR against every human text in ``df``.

    A generator's rows hold no humans, so its own AUROC is undefined; scoring its AI texts against
    the shared human pool is the usual per-generator number. Keys get a ``_vs_humans`` suffix and
    are None for groups that are not AI-only.
    """
    humans = df[df["y"] == 0]
    out = []
    for row in rows:
        extra = dict.fromkeys(VS_HUMANS_KEYS)
        if row["n_human"] == 0 and row["n_ai"] > 0 and len(humans):
            mask = df[group_col].isna() if row["group"] is None else df[group_col] == row["group"]
            part = pd.concat([df[mask & (df["y"] == 1)], humans])
            s = summarize(part["y"].to_numpy(), part["p"].to_numpy())
            extra = {f"{k}_vs_humans": s[k] for k in ("auroc", "tpr_at_1fpr", "tpr_at_5fpr")}
        out.append(json_safe({**row, **extra}))
    return out


def ai_verdict_fpr(df: pd.DataFrame, label_col: str = "label") -> dict[str, dict[str, Any]]:
    """{group: n_human, n_flagged, fpr} for all humans, each source and each length bucket."""
    humans = df[df["y"] == 0]
    groups: dict[str, pd.DataFrame] = {"all": humans}
    if "source" in humans.columns:
        groups.update({f"source={k}": g for k, g in humans.groupby("source")})
    if "n_tokens" in humans.columns:
        buckets = humans["n_tokens"].map(length_bucket)
        groups.update({f"length={k}": humans[buckets == k] for k in LENGTH_BUCKET_LABELS if (buckets == k).any()})
    out = {}
    for name, g in groups.items():
        flagged = int((g[label_col] == AI).sum())
        out[name] = {"n_human": int(len(g)), "n_flagged": flagged, "fpr": flagged / len(g) if len(g) else None}
    return out


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def plot_roc(path: Path, y: np.ndarray, models: Mapping[str, np.ndarray]) -> None:
    """ROC of every model on a log FPR axis, since the useful operating region is FPR <= 5%."""
    fig = Figure(figsize=(6.5, 5))
    ax = fig.add_subplot()
    for name, p in models.items():
        ok = _finite(p)
        if len(set(y[ok].tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[ok], p[ok], drop_intermediate=False)
        s = summarize(y[ok], p[ok])
        ax.plot(np.maximum(fpr, ROC_MIN_FPR / 2), tpr, lw=1.5,
                label=f"{name} (AUROC {s['auroc']:.3f}, TPR@1% {s['tpr_at_1fpr']:.2f})")
    grid = np.logspace(np.log10(ROC_MIN_FPR), 0, 100)
    ax.plot(grid, grid, ls=":", color="grey", lw=1, label="chance")
    for x in (0.01, 0.05):
        ax.axvline(x, ls="--", color="black", lw=0.8, alpha=0.6)
        ax.text(x, 0.99, f"{x:.0%} FPR ", fontsize=8, rotation=90, va="top", ha="right")
    ax.set_xscale("log")
    ax.set_xlim(ROC_MIN_FPR, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (humans flagged as AI)")
    ax.set_ylabel("true positive rate (AI flagged)")
    ax.set_title("ROC (test set)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, path)


def plot_reliability(path: Path, y: np.ndarray, p: np.ndarray, name: str, n_bins: int = RELIABILITY_BINS) -> None:
    """Reliability diagram plus per-bin counts, so well-populated miscalibrated bins stand out."""
    ok = _finite(p)
    bins = reliability_bins(y[ok], p[ok], n_bins)
    ece = summarize(y[ok], p[ok])["ece"]
    edges, count = bins["edges"], bins["count"]
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = Figure(figsize=(6, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    top.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    filled = count > 0
    top.bar(centers[filled], bins["frac_ai"][filled], width=width[filled], alpha=0.35, edgecolor="C0",
            label="AI fraction per bin")
    top.plot(bins["mean_p"][filled], bins["frac_ai"][filled], "o-", color="C0", ms=4, label="(mean P(AI), AI fraction)")
    top.set_ylim(0, 1)
    top.set_ylabel("fraction AI")
    top.set_title(f"Reliability: {name} ({n_bins} equal-width bins, ECE {ece:.3f})")
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(centers, count, width=width, color="C1", edgecolor="black", lw=0.3)
    if count.max(initial=0) > 0:
        bottom.set_yscale("log")
        bottom.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_major_formatter(ScalarFormatter())
        bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("predicted P(AI)")
    bottom.set_ylabel("texts")
    _save(fig, path)


def plot_score_hist(path: Path, y: np.ndarray, p: np.ndarray, name: str) -> None:
    """Histograms of P(AI) by true class: shows separation and where the classes overlap."""
    ok = _finite(p)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, 41)
    for cls, label, color in ((0, "human", "C0"), (1, "AI", "C3")):
        vals = p[ok & (y == cls)]
        ax.hist(vals, bins=edges, alpha=0.5, color=color, edgecolor=color, label=f"{label} (n={vals.size})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("predicted P(AI)")
    ax.set_ylabel("texts")
    ax.set_title(f"Score distribution by true label: {name}")
    ax.legend(fontsize=8)
    _save(fig, path)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _metric_rows(named: Sequence[tuple[Any, Mapping[str, Any]]], small: bool = False) -> list[list[Any]]:
    return [[name, *(m.get(k) for k, _ in _METRIC_COLUMNS), *([m.get("small", False)] if small else [])]
            for name, m in named]


def _headline_rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    """(metric, value, 95% interval) rows; the interval is blank for metrics without one."""
    ci = summary.get("ci95") or {}
    return [[label, summary.get(k), "" if k not in ci else f"{ci[k][0]:.3f}–{ci[k][1]:.3f}"]
            for k, label in _METRIC_COLUMNS]


def render_markdown(ev: Mapping[str, Any]) -> str:
    """The human-readable report, built only from the (JSON-safe) eval dict so the two agree."""
    headline = ev["headline"]
    ov = ev["overall"]
    out = [f"# Evaluation report: {headline}", "",
           f"Test set: {ov['n']} scored texts ({ov['n_ai']} AI, {ov['n_human']} human); "
           f"{ov.get('n_unscored', 0)} without a score. AI is flagged when P(AI) >= threshold; TPR@x%FPR is the "
           "best TPR of an actual threshold whose FPR on human texts is <= x%. ECE uses "
           f"{ev['n_bins']} equal-width bins weighted by bin count.", "", "## Headline", ""]
    out += _table(["metric", "value", "95% interval"], _headline_rows(ov)) + [""]
    if ev.get("long_enough"):
        le = ev["long_enough"]
        out += [f"### On the texts it answers (at least {le['min_tokens']} tokens: "
                f"{le['share_of_test']:.0%} of the test split)", "",
                "Below `min_tokens` the detector answers `insufficient_text` and gives no P(AI); the headline "
                "above still scores those texts from the cached pass.", ""]
        out += _table(["metric", "value", "95% interval"], _headline_rows(le)) + [""]
    if ov.get("ci95"):
        out += ["95% intervals: percentile bootstrap, humans and AI texts resampled separately, 1000 draws.", ""]
    out += ["## Ablation", ""]
    out += _table(["model", *(lbl for _, lbl in _METRIC_COLUMNS), "unscored"],
                  [[*row, m.get("n_unscored")] for row, m in zip(_metric_rows(list(ev["ablation"].items())),
                                                                 ev["ablation"].values(), strict=True)]) + [""]
    titles = {"by_source": "By source", "by_domain": "By domain", "by_generator": "By generator",
              "by_variant": "By variant", "by_length": "By length (tokens)"}
    for key, title in titles.items():
        out += [f"## {title}", ""]
        rows = ev.get(key) or []
        if rows:
            vs = key == "by_generator"
            out += _table(["group", *(lbl for _, lbl in _METRIC_COLUMNS), f"small (n<{ev['min_group_n']})",
                           *(["AUROC vs humans", "TPR@1% vs humans", "TPR@5% vs humans"] if vs else [])],
                          [[*row, *([r.get(k) for k in VS_HUMANS_KEYS] if vs else [])]
                           for row, r in zip(_metric_rows([(r["group"], r) for r in rows], small=True), rows,
                                             strict=True)])
            if vs:
                out += ["", "AI-only generators have no humans of their own: the *vs humans* columns score "
                        "their AI texts against all human texts of the test set."]
        else:
            out.append("_No data for this grouping._")
        out.append("")
    out += render_generalization(ev.get("generalization") or {}, trained_with_auroc(ev))
    out += render_fpr_table(ev.get("ai_verdict_fpr") or {})
    out += ["## Verdicts", ""]
    vd = ev["verdicts"]
    if vd.get("available"):
        out += _table(["label", "true AI", "true human", "total"],
                      [[lab, c["ai"], c["human"], c["total"]] for lab, c in vd["counts"].items()]) + [""]
        out += _table(["true class", "n", "decided", "coverage", "accuracy of decided"],
                      [["all", vd["n"], vd["n_decided"], vd["coverage"], vd["accuracy"]],
                       *[[cls, r["n"], r["n_decided"], r["coverage"], r["accuracy"]]
                         for cls, r in vd["by_class"].items()]])
        out += ["", "Decided = labelled ai or human; every other label is an abstention."]
    else:
        out.append("_No verdict labels were given._")
    out += ["", "## Plots", ""]
    out += [f"- [ROC curves]({PLOTS['roc']})", f"- [Reliability diagram]({PLOTS['reliability']})",
            f"- [Score histograms]({PLOTS['score_hist']})", ""]
    out += [f"![ROC curves]({PLOTS['roc']})", "", f"![Reliability diagram]({PLOTS['reliability']})", "",
            f"![Score histograms]({PLOTS['score_hist']})", ""]
    out += ["## Extra", "", "```json", json.dumps(ev.get("extra") or {}, indent=2, allow_nan=False), "```", ""]
    return "\n".join(out)


def _fold_table(table: Mapping[str, Mapping[str, Any]], models: Sequence[str],
                trained_with: Mapping[str, float] | None = None) -> list[str]:
    """One row per held-out group; ``trained_with``: the shipped model's AUROC on each group's own test texts,
    the model having trained on that group (an in-distribution reference for the held-out AUROC)."""
    trained_with = {k: v for k, v in (trained_with or {}).items() if k in table}
    extra = bool(trained_with) and len(trained_with) == len(table)
    rows = []
    for fold, row in table.items():
        zs = row.get("best_zero_shot", {})
        first = row[models[0]]
        ai = f"{first['ai_flagged']}/{first['ai_humans']}" if "ai_flagged" in first else None
        rows.append([fold, first["n"], *(row[m]["auroc"] for m in models),
                     *(first.get(k) for k in ("tpr_at_1fpr", "ece")), ai, zs.get("feature"), zs.get("auroc"),
                     *([trained_with[fold]] if extra else [])])
    means = ["mean", None, *(float(np.mean([r[m]["auroc"] for r in table.values()])) for m in models),
             float(np.mean([r[models[0]]["tpr_at_1fpr"] for r in table.values()])),
             float(np.mean([r[models[0]]["ece"] for r in table.values()])), None, None,
             float(np.mean([r["best_zero_shot"]["auroc"] for r in table.values()])),
             *([float(np.mean(list(trained_with.values())))] if extra else [])]
    header = ["held out", "n", *(f"AUROC {m}" for m in models), f"TPR@1%FPR {models[0]}", f"ECE {models[0]}",
              f"held-out humans called ai by {models[0]}", "best zero-shot feature (chosen on training folds)",
              "its AUROC", *(["AUROC on its own test texts, trained with it (shipped model)"] if extra else [])]
    return _table(header, [*rows, means])


def trained_with_auroc(ev: Mapping[str, Any]) -> dict[str, float]:
    """Per source: the shipped model's test AUROC on that source, which it trained on. Beside the
    leave-one-source-out AUROC it shows what holding a source out costs: a source the model never saw is
    rarely scored better than by a model that trained on it, so the mean of this column is a practical
    ceiling for the leave-one-source-out mean with this backbone and design."""
    return {r["group"]: float(r["auroc"]) for r in ev.get("by_source") or []
            if r.get("auroc") is not None and np.isfinite(r["auroc"])}


def render_generalization(gen: Mapping[str, Any], trained_with: Mapping[str, float] | None = None) -> list[str]:
    """Leave-one-source-out / leave-one-generator-out tables and the zero-shot guard, if present.
    ``trained_with``: per source, the shipped model's test AUROC there (``trained_with_auroc``)."""
    if not gen:
        return []
    models = list(gen.get("models", []))
    out = ["## Generalisation", "", gen.get("note", ""), ""]
    for key, title in (("leave_one_source_out_table", "Leave one source out"),
                       ("leave_one_generator_out_table", "Leave one generator out")):
        if gen.get(key):
            ref = trained_with if key == "leave_one_source_out_table" else None
            out += [f"### {title}", ""] + _fold_table(gen[key], models, ref) + [""]
    if gen.get("design_selection"):
        out += ["### Design, chosen by the leave-one-source-out table", "",
                gen.get("design_rule", "Best mean AUROC among the designs that never trail the best zero-shot "
                                       "feature by more than the margin on any held-out source.")
                + " (Fallbacks: the guard-holding design accusing fewest held-out humans; else the one whose "
                  "worst source trails least.)", ""]
        out += _table(["design", "LOSO mean AUROC", "guard holds", "worst held-out humans called ai"],
                      [[k, v["loso_mean_auroc"], "yes" if v["guard_holds"] else "no",
                        "not measured" if v.get("worst_heldout_ai_fpr") is None
                        else f"{v['worst_heldout_ai_fpr']:.1%}"]
                       for k, v in gen["design_selection"].items()])
        out += ["", f"Chosen: `{gen.get('chosen')}`.", ""]
    guard = gen.get("zero_shot_guard")
    if guard and guard.get("gaps"):
        out += ["### Never below its own zero-shot evidence", "",
                f"Shipped model `{guard['model']}` minus the best single zero-shot feature, per held-out source "
                f"(must be >= -{guard['margin']}): " + ", ".join(f"{k} {v:+.3f}" for k, v in guard["gaps"].items())
                + f". Holds: **{'yes' if guard['holds'] else 'no'}**.", ""]
    return out


def render_fpr_table(fpr: Mapping[str, Any]) -> list[str]:
    """Share of human test texts given the `ai` verdict, overall and per source / length bucket."""
    if not fpr:
        return []
    out = ["## `ai` verdicts on human texts (false-positive rate)", ""]
    rows = [[group, r["n_human"], r["n_flagged"], r["fpr"]] for group, r in fpr.items()]
    return out + _table(["group", "human texts", "called ai", "FPR"], rows) + [""]


def write_report(out_dir: Path, test_df: pd.DataFrame, *, ablation: Mapping[str, np.ndarray],
                 headline_name: str = "combined", extra: dict | None = None,
                 abstain_col: str | None = "label", generalization: dict | None = None) -> dict:
    """Write eval.json, eval.md, roc.png, reliability.png and score_hist.png into ``out_dir``.

    ``test_df`` needs ``y`` (1 = AI) and ``p`` (headline P(AI); NaN where the model abstained),
    and uses source/domain/generator/variant/n_tokens when present; ``abstain_col`` names the
    verdict-label column. ``ablation`` maps model names to P(AI) arrays aligned with the rows;
    the headline model is always included from ``p``. Metrics use the rows with a finite score.
    Returns the strict-JSON eval dict that was written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = test_df.reset_index(drop=True).copy()
    y = df["y"].to_numpy(dtype=int)
    p = df["p"].to_numpy(dtype=float)
    models: dict[str, np.ndarray] = {headline_name: p}
    for name, scores in ablation.items():
        arr = np.asarray(scores, dtype=float).ravel()
        if arr.shape != p.shape:
            raise ValueError(f"ablation model {name!r} has {arr.size} scores for {p.size} rows")
        if name != headline_name:
            models[name] = arr

    scored = df[_finite(p)]
    ev: dict[str, Any] = {
        "headline": headline_name,
        "n_bins": RELIABILITY_BINS,
        "min_group_n": MIN_GROUP_N,
        "length_bucket_edges": list(LENGTH_BUCKET_EDGES),
        "overall": _summary_with_coverage(y, p, intervals=True),
    }
    for key, col in GROUP_SECTIONS:
        ev[key] = by_group(scored, col, min_n=MIN_GROUP_N) if col in df.columns else []
    if ev["by_generator"]:
        ev["by_generator"] = add_vs_humans(ev["by_generator"], scored, "generator")
    if "n_tokens" in df.columns:
        lengths = scored.assign(length_bucket=scored["n_tokens"].map(length_bucket))
        ev["by_length"] = by_group(lengths, "length_bucket", min_n=MIN_GROUP_N,
                                   order=[*LENGTH_BUCKET_LABELS, UNKNOWN_LENGTH])
    else:
        ev["by_length"] = []
    ev["ablation"] = {name: _summary_with_coverage(y, scores) for name, scores in models.items()}
    min_tokens = ((extra or {}).get("thresholds") or {}).get("min_tokens")
    if min_tokens and "n_tokens" in df.columns:
        # The detector answers `insufficient_text` below min_tokens: the headline above still counts those texts
        # (every test text has a P(AI) from the cached pass); this is the same model on the texts it answers.
        long_enough = df["n_tokens"].to_numpy() >= min_tokens
        ev["long_enough"] = {"min_tokens": int(min_tokens), "share_of_test": float(long_enough.mean()),
                             **_summary_with_coverage(y[long_enough], p[long_enough], intervals=True)}
    if abstain_col and abstain_col in df.columns:
        ev["verdicts"] = verdict_summary(df[abstain_col], y)
    else:
        ev["verdicts"] = {"available": False}
    ev["extra"] = extra or {}
    if generalization:
        ev["generalization"] = generalization
        trained_with = trained_with_auroc(ev)
        ev["leave_one_source_out"] = {
            fold: {**{k: row[generalization["models"][0]][k] for k in ("auroc", "tpr_at_1fpr", "ece", "n", "ai_fpr")
                      if k in row[generalization["models"][0]]},
                   **({"auroc_trained_with_it": trained_with[fold]} if fold in trained_with else {})}
            for fold, row in generalization.get("leave_one_source_out_table", {}).items()}
    if abstain_col and abstain_col in df.columns:
        ev["ai_verdict_fpr"] = ai_verdict_fpr(df, abstain_col)
    ev["plots"] = dict(PLOTS)
    ev = json_safe(ev)

    (out_dir / "eval.json").write_text(json.dumps(ev, indent=2, allow_nan=False) + "\n")
    plot_roc(out_dir / PLOTS["roc"], y, models)
    plot_reliability(out_dir / PLOTS["reliability"], y, p, headline_name)
    plot_score_hist(out_dir / PLOTS["score_hist"], y, p, headline_name)
    (out_dir / "eval.md").write_text(render_markdown(ev))
    return ev
