"""Which backbone should read the text? Same texts, same design, one table per backbone.

``python -m training.backbone_comparison --lm embedded:smollm2 embedded:gemma3 --names smollm2-en gemma3-en``

(after ``python -m training.train --lm embedded:gemma3 --name gemma3-en --pass-only`` has run for a while: the
comparison uses the texts cached so far)

The leave-one-source-out gap is the English bundle's main weakness, and the head and the zero-shot features
can only be as good as the hidden states and token statistics of the pass they read. This runs the training
pipeline's own leave-one-source-out and leave-one-generator-out folds (``training.design_grid.generalization``)
with one fixed design (the shipped English design: a linear probe on every cached depth, C=0.002, blend 0.5
toward the best zero-shot feature, length-aware calibration) on each backbone, restricted to the texts whose
LM pass is cached for *every* backbone compared. The pass visits a run's texts in a seeded random order, so a
slow backbone's partial pass is a fair sample, and both backbones see exactly the same texts.

Also reported per source: the AUROC of each zero-shot feature with its direction fixed on the other sources
(what a user of that feature alone would get on a collection it was not tuned on), and the in-distribution
test-split AUROC of the same design. Written to ``reports/backbone_comparison.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.special import expit

from detector.combiner import CalibratedCombiner
from detector.lm import cpu_description, load_lm
from training.config import Config
from training.data import REPO_ROOT
from training.design_grid import generalization
from training.designs import ProbeDesign
from training.featurize import _index, normalized, text_key
from training.fit import combined_matrix, fit_combiners, fit_probe
from training.generalization import guard_check, mean_auroc, oriented_auroc
from training.lm_pass import pass_folder
from training.metrics import auroc, tpr_at_fpr
from training.prepared import prepare
from training.rows import prepare_rows

BLEND = 0.5  # the shipped English design's blend weight toward the best zero-shot feature
PROBE_C = 0.002
CALIBRATION = "platt_length"


def cached_keys(cfg: Config) -> set[str]:
    """Text keys whose LM pass is cached for ``cfg``'s backbone, precision and pass settings."""
    folder = pass_folder(cfg, load_lm(cfg.lm, device=cfg.device))
    return set(_index(folder)) if folder.exists() else set()


def per_source_features(data) -> dict[str, dict[str, float]]:
    """AUROC of each zero-shot feature on each source, its direction fixed on the other sources."""
    names = data.features
    src = data.rows["source"].to_numpy()
    out: dict[str, dict[str, float]] = {}
    for source in sorted(set(src)):
        test, fit = np.flatnonzero(src == source), np.flatnonzero(src != source)
        out[source] = {n: round(oriented_auroc(data.y[fit], data.Z[fit, j], data.y[test], data.Z[test, j]), 4)
                       for j, n in enumerate(names)}
    return out


def in_distribution(cfg: Config, data, design: ProbeDesign) -> dict[str, float]:
    """Test-split AUROC / TPR@1%FPR of the head alone and of the blended design, fit on train (+ cal)."""
    train, cal, test = (data.idx(s) for s in ("train", "cal", "test"))
    _, logits = fit_probe(data, train, design, seed=cfg.seed)
    fit = np.concatenate([train, cal])
    full, _, single = fit_combiners(data, logits, fit, cfg.seed, design.zero_shot, CALIBRATION)
    model = CalibratedCombiner.blend(full, single, BLEND, data.y[fit])
    p = model.predict_proba(combined_matrix(data, logits, model.feature_names)[test], data.n_tokens[test])[:, 1]
    y = data.y[test]
    return {"n_test": int(len(test)), "head_auroc": round(auroc(y, expit(logits[test])), 4),
            "auroc": round(auroc(y, p), 4), "tpr_at_1fpr": round(tpr_at_fpr(y, p, 0.01), 4)}


def compare(lms: Sequence[str], names: Sequence[str], runs_dir: str | None = None, limit: int | None = None,
            ) -> dict:
    """Every backbone's tables on the texts cached for all of them (at most ``limit``, in the rows' order).

    ``names``: each backbone's training run (``runs/<name>``, made with the same sources, sizes and seed, so the
    same sampled rows; a run is pinned to its backbone).
    """
    base = Config(runs_dir=runs_dir or Config().runs_dir, partial=True, calibration=(CALIBRATION,))
    cfgs = [replace(base, lm=lm, name=name) for lm, name in zip(lms, names, strict=True)]
    rows = prepare_rows(cfgs[0], Path(base.runs_dir) / cfgs[0].name)
    keys = np.asarray([text_key(t) for t in normalized(rows["text"].tolist())])
    common = set.intersection(*(cached_keys(c) for c in cfgs))
    keep = np.isin(keys, list(common))
    if limit is not None:
        keep &= np.cumsum(keep) <= limit
    kept_keys = set(keys[keep])
    print(f"[compare] {int(keep.sum())} texts cached for every backbone", file=sys.stderr)

    def only(r):
        return np.isin([text_key(t) for t in normalized(r["text"].tolist())], list(kept_keys))

    out: dict = {"texts": int(keep.sum()), "design": f"probe C={PROBE_C} on every cached depth, blend {BLEND}, "
                                                     f"{CALIBRATION}", "backbones": {}}
    for cfg in cfgs:
        lm, data, _ = prepare(cfg, Path(cfg.runs_dir) / cfg.name, only=only)
        out["backbones"][cfg.lm] = {"identity": lm.identity, "precision": lm.precision, **backbone_tables(cfg, data)}
        del lm, data
    return out


def backbone_tables(cfg: Config, data) -> dict:
    """One backbone's tables: the fixed design's leave-one-source-out / -generator-out folds, its test-split
    AUROC, and each zero-shot feature per source."""
    design = ProbeDesign(PROBE_C, data.layers, "all")
    gen = generalization(cfg, data, design, (BLEND, 1.0), with_logo=True, unseen_lines=False,
                         calibration=CALIBRATION)
    loso, logo = gen["leave_one_source_out_table"], gen["leave_one_generator_out_table"]
    return {
        "layers": list(data.layers),
        "counts": data.rows.groupby(["source", "label"]).size().unstack(fill_value=0).to_dict(orient="index"),
        "loso": loso, "logo": logo,
        "loso_mean": {m: round(mean_auroc(loso, m), 4) for m in gen["models"]},
        "logo_mean": {m: round(mean_auroc(logo, m), 4) for m in gen["models"]} if logo else {},
        "guard": guard_check(loso, f"combined_w{BLEND}"),
        "feature_auroc_by_source": per_source_features(data),
        "in_distribution": in_distribution(cfg, data, design),
    }


def render(result: dict, command: str) -> str:
    """The comparison as Markdown: LOSO and LOGO means, per-fold AUROCs and the zero-shot features per source."""
    bbs = result["backbones"]
    names = list(bbs)
    lines = ["# Backbone comparison: the same texts and design read by each backbone", "",
             f"Command: `{command}`  ", f"CPU: {result['cpu']}; {result['texts']} texts (those cached for every "
             f"backbone: a seeded random sample of the runs' rows). Design: {result['design']}.", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label, get):
        lines.append(f"| {label} | " + " | ".join(get(bbs[n]) for n in names) + " |")

    row("identity, precision", lambda b: f"`{b['identity']}`, {b['precision']}")
    row("test split: AUROC (head alone)", lambda b: f"{b['in_distribution']['auroc']:.3f} "
                                                    f"({b['in_distribution']['head_auroc']:.3f})")
    row("test split: TPR@1%FPR", lambda b: f"{b['in_distribution']['tpr_at_1fpr']:.3f}")
    for m in (f"combined_w{BLEND}", "combined_w1.0", "zero_shot", "head"):
        row(f"leave-one-source-out mean AUROC, {m}", lambda b, m=m: f"{b['loso_mean'][m]:.3f}")
    row(f"leave-one-generator-out mean AUROC, combined_w{BLEND}",
        lambda b: f"{b['logo_mean'].get(f'combined_w{BLEND}', float('nan')):.3f}")
    row("zero-shot guard holds (worst gap)",
        lambda b: f"{b['guard']['holds']} ({min(b['guard']['gaps'].values()):+.3f})")
    lines += ["", "## Leave one source out, per fold (AUROC)", ""]
    folds = list(next(iter(bbs.values()))["loso"])
    lines += ["| held out | n | " + " | ".join(f"{n}: combined / zero-shot / head / best feature" for n in names)
              + " |", "|---|---|" + "---|" * len(names)]
    for f in folds:
        cells = []
        for n in names:
            r = bbs[n]["loso"][f]
            cells.append(f"{r[f'combined_w{BLEND}']['auroc']:.3f} / {r['zero_shot']['auroc']:.3f} / "
                         f"{r['head']['auroc']:.3f} / {r['best_zero_shot']['auroc']:.3f} "
                         f"({r['best_zero_shot']['feature']})")
        lines.append(f"| {f} | {bbs[names[0]]['loso'][f][f'combined_w{BLEND}']['n']} | " + " | ".join(cells) + " |")
    lines += ["", "## Zero-shot features per source (AUROC, direction fixed on the other sources)", ""]
    sources = list(next(iter(bbs.values()))["feature_auroc_by_source"])
    lines += ["| feature | " + " | ".join(f"{s}: " + " / ".join(names) for s in sources) + " |",
              "|---|" + "---|" * len(sources)]
    for feat in next(iter(bbs.values()))["feature_auroc_by_source"][sources[0]]:
        lines.append(f"| {feat} | " + " | ".join(
            " / ".join(f"{bbs[n]['feature_auroc_by_source'][s][feat]:.3f}" for n in names) for s in sources) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", nargs="+", default=["embedded:smollm2", "embedded:gemma3"], help="backbones compared")
    ap.add_argument("--names", nargs="+", default=["smollm2-en", "gemma3-en"],
                    help="each backbone's training run (same sources, sizes and seed: the same sampled rows)")
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--limit", type=int, default=None, help="at most this many texts")
    ap.add_argument("--out", default=str(REPO_ROOT / "reports" / "backbone_comparison"))
    a = ap.parse_args(argv)
    command = " ".join(["python -m training.backbone_comparison", *(sys.argv[1:] if argv is None else argv)])
    result = compare(a.lm, a.names, a.runs_dir, a.limit)
    result["cpu"], result["command"] = cpu_description(), command
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    out.with_suffix(".md").write_text(render(result, command))
    print(render(result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
