"""A bundle whose combiner reads the discrepancy-trained evidence: the tuned fork's discrepancy and the witness.

It is built on an existing bundle of the same backbone (its probe head, sentence model, languages and data
card stay), with a new document combiner, its out-of-source calibration and `ai`/`human` lines, the LoRA
factors of the tuned top blocks (``ddl_adapter.safetensors``) and the witness coefficients. The manifest names
all of them under ``evidence``, pinned to the backbone the base bundle is pinned to.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from detector.bundle import ADAPTER_FILE, Bundle
from detector.combiner import CalibratedCombiner
from detector.probe import LinearProbe
from detector.witness import LOW, N_BASES


def evidence_bundle(base: Bundle, path: Path, *, combiner: CalibratedCombiner,
                    factors: dict[str, torch.Tensor] | None, scale: float, k: int, ddl_setting: dict,
                    witness_beta: np.ndarray | None, thresholds: dict, calibration_probs: dict,
                    probe: LinearProbe | None = None, data: dict | None = None, precision: str | None = None,
                    design: str = "", feature_ranges: dict | None = None) -> Bundle:
    """A new bundle at ``path``: ``base`` with the combiner, lines and trained evidence replaced (see module).

    ``feature_ranges`` (the page's typical ranges) replace the base bundle's where given: a new head's logit has
    its own scale. Only the evidence the combiner reads is kept: ``factors`` (the tuned fork) when it reads
    ``tuned_discrepancy``, ``witness_beta`` when it reads ``witness``; ``probe`` replaces the base bundle's head.
    """
    manifest = copy.deepcopy(base.manifest)
    manifest["name"] = Path(path).name
    manifest["features"] = list(combiner.feature_names)
    reads = set(combiner.feature_names)
    evidence: dict = {}
    if "tuned_discrepancy" in reads:
        if not factors:
            raise ValueError("the combiner reads tuned_discrepancy: the adapter's factors are needed")
        evidence["tuned_discrepancy"] = {"k": int(k), "scale": float(scale), "file": ADAPTER_FILE,
                                         # read over the tokens the adapter was trained on (TunedTop.window)
                                         "window": ddl_setting.get("max_tokens"),
                                         "method": "Direct Discrepancy Learning (DetectAnyLLM, Fu et al., 2025): "
                                                   "LoRA on q/v of the top k blocks", "training": ddl_setting}
    else:
        factors = None
    if witness_beta is not None and "witness" in reads:
        evidence["witness"] = {"beta": [float(b) for b in witness_beta], "n_bases": N_BASES, "low": LOW,
                               "method": "AdaDetectGPT (Zhou et al., 2025): closed-form witness on hat bases"}
    manifest["evidence"] = evidence
    manifest["thresholds"] = thresholds
    manifest["calibration_probs"] = calibration_probs
    if data is not None:
        manifest["data"] = data
    if precision:
        manifest["precision"] = precision
    if feature_ranges:
        manifest["feature_ranges"] = {**manifest.get("feature_ranges", {}), **feature_ranges}
    head_state = dict(base.head_state)
    if probe is not None:
        manifest["head"] = {"kind": "probe", "layers": list(probe.layers), "C": probe.C, "file": "head.safetensors",
                            "pooling": "token_mean"}
        head_state = probe.to_tensors()
    if design:
        manifest["head"] = {**manifest["head"], "design": design}
    bundle = Bundle(path=Path(path), manifest=manifest, combiner=combiner, segment_combiner=base.segment_combiner,
                    head_state=head_state, metrics={}, ablation={},
                    adapter_state={name: t.float().contiguous() for name, t in (factors or {}).items()})
    bundle.save()
    return bundle
