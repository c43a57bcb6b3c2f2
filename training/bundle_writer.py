"""Step 6 of training: write the bundle, everything the detector needs to score as trained.

``detector/bundles/<name>/`` (or ``--bundle-dir``): the manifest (backbone identity, head, features, the
decision lines and the calibration probabilities they were set from, feature ranges for the page, versions,
data summary), the head's weights and the combiners (``detector.bundle.Bundle``).
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import torch

from detector.bundle import BUNDLES_DIR, FORMAT_VERSION, Bundle
from detector.combiner import CalibratedCombiner
from detector.lm import LanguageModel, describe
from detector.probe import RoutedProbe
from training.config import Config
from training.data import source_licences, split_manifest
from training.design_grid import ChosenDesign
from training.designs import BlocksDesign, Design
from training.fit import Head
from training.prepared import Prepared
from training.thresholds import human_groups
from training.train_head import HeadTrainer


def bundle_manifest(cfg: Config, lm: LanguageModel, data: Prepared, chosen: ChosenDesign, head: Head,
                    document: CalibratedCombiner, segment: CalibratedCombiner, thresholds: dict, fit: np.ndarray,
                    cal_rows: list[dict[str, float]]) -> dict:
    """The bundle's ``manifest.json``.

    ``document``: the shipped document combiner, fit on the ``fit`` rows (its out-of-fold probabilities are the
    calibration probabilities stored for ``Detector.ai_line``); ``thresholds``: ``training.thresholds.
    decision_thresholds``; ``cal_rows``: the calibration texts' feature dicts (feature ranges for the page).
    """
    p_cal, y_cal = document.oof_proba_, data.y[fit]
    groups = human_groups(data, fit, p_cal, chosen.unseen_p, thresholds["min_tokens"])
    return {
        "name": cfg.name, "format_version": FORMAT_VERSION, "backbone": describe(lm), "max_tokens": cfg.max_tokens,
        "precision": lm.precision,
        "head": head_manifest(chosen.design, chosen.weight, head),
        "features": list(document.feature_names), "segment_features": segment.feature_names,
        "languages": [cfg.lang],
        "thresholds": thresholds,
        "calibration_probs": {"human": sorted(float(v) for v in p_cal[y_cal == 0]),
                              "ai": sorted(float(v) for v in p_cal[y_cal == 1]),
                              "ai_line_groups": {name: sorted(float(v) for v in q) for name, q in groups.items()}},
        "feature_ranges": feature_ranges(cal_rows, data.y[data.idx("cal")]), "versions": versions(),
        "data": {"sources": list(cfg.sources), "lang": cfg.lang, "licences": source_licences(cfg.sources),
                 "counts": split_manifest(data.rows)["counts"],
                 "label_policy": "AI = wording produced by a language model, including human drafts polished, "
                                 "paraphrased or back-translated by a model; typo/character edits of human "
                                 "text stay human",
                 "split": "grouped by pair_id (id when null), hashed with seed; see runs/<name>/split.json",
                 "config": cfg.data_key()},
    }


def write_bundle(cfg: Config, manifest: dict, document: CalibratedCombiner, segment: CalibratedCombiner,
                 head: Head, ablation: dict[str, CalibratedCombiner]) -> Bundle:
    """Save the bundle (metrics still empty: the evaluation fills them in) and return it."""
    bundle = Bundle(path=Path(cfg.bundle_dir or BUNDLES_DIR / cfg.name), manifest=manifest, combiner=document,
                    segment_combiner=segment, head_state=head_tensors(head), metrics={}, ablation=ablation)
    bundle.save()
    return bundle


def head_manifest(design: Design, weight: float, head: Head | None = None) -> dict:
    """The manifest's ``head`` entry for the chosen design."""
    common = {"file": "head.safetensors", "pooling": "token_mean", "design": design.name, "blend_weight": weight}
    if isinstance(design, BlocksDesign):
        return {"kind": "blocks", "k": design.k, "epochs": design.epochs, "lr": design.lr,
                "weights_dtype": "bfloat16", **common}
    out = {"kind": "probe", "layers": list(design.layers), "C": design.C, **common}
    if isinstance(head, RoutedProbe):
        out.update(experts=list(head.experts_), router_C=head.router_C)
    return out


def head_tensors(head: Head) -> dict[str, torch.Tensor]:
    """What ``head.safetensors`` stores. Fine-tuned blocks are kept in bf16 (half the bundle; the detector runs
    them in fp32), so every reported number is measured with the rounded weights the bundle ships."""
    if isinstance(head, HeadTrainer):
        return {k: v.to(torch.bfloat16) for k, v in head.head_.trainable_state_dict().items()}
    return head.to_tensors()


def feature_ranges(rows: list[dict[str, float]], y: np.ndarray) -> dict:
    """10th/50th/90th percentiles of each feature among human and AI cal texts (shown on the page)."""
    out = {}
    for name in rows[0]:
        values = np.asarray([r[name] for r in rows])
        out[name] = {label: [round(float(q), 4) for q in np.percentile(values[y == cls], [10, 50, 90])]
                     for label, cls in (("human", 0), ("ai", 1))}
    return out


def versions() -> dict:
    """Versions of the libraries the bundle was trained with."""
    import sklearn
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "scikit-learn": sklearn.__version__, "numpy": np.__version__}
