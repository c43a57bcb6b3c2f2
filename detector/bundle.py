"""A bundle: everything one trained detector needs, pinned to one backbone.

``detector/bundles/<name>/`` holds ``manifest.json`` (backbone identity and hash, feature
names, thresholds, languages, versions, data summary), ``head.safetensors`` (the fine-tuned
top blocks + score), ``combiner.json`` (document and segment combiners as plain arrays) and
``metrics.json``; a bundle whose combiner reads the discrepancy-trained evidence also holds
``ddl_adapter.safetensors`` (LoRA factors of the tuned top blocks, ``detector.tuned_top``) and names it, with the
witness coefficients, under ``manifest["evidence"]``. Nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from detector.classifier import ClassifierHead
from detector.combiner import CalibratedCombiner
from detector.lm import LanguageModel
from detector.probe import LinearProbe, RoutedProbe
from detector.tuned_top import TunedTop

ADAPTER_FILE = "ddl_adapter.safetensors"
BUNDLES_DIR = Path(__file__).resolve().parent / "bundles"
DEFAULT_BUNDLE = "smollm2-en"
FORMAT_VERSION = 1


class BundleError(RuntimeError):
    """A bundle is missing, malformed, or does not belong to the language model offered."""


def resolve_bundle_path(name_or_path: str | Path) -> Path:
    """A bundle name under detector/bundles/, or a path to a bundle folder."""
    candidate = Path(name_or_path).expanduser()
    if (candidate / "manifest.json").exists():
        return candidate
    named = BUNDLES_DIR / str(name_or_path)
    if (named / "manifest.json").exists():
        return named
    available = sorted(p.name for p in BUNDLES_DIR.glob("*") if (p / "manifest.json").exists())
    raise BundleError(f"bundle {str(name_or_path)!r} not found (available: {available or 'none'}); "
                      "train one with: python -m training.train")


def find_bundle_for_lm(spec: str) -> Path:
    """The shipped bundle trained on backbone ``spec``; error if there is none (never swap silently)."""
    for path in sorted(BUNDLES_DIR.glob("*/manifest.json")):
        if json.loads(path.read_text())["backbone"]["spec"] == spec:
            return path.parent
    raise BundleError(f"no trained bundle for language model {spec!r}; a bundle only runs on the model it was "
                      f"trained with. Train one with: python -m training.train --lm {spec}")


@dataclass
class Bundle:
    """Loaded bundle contents (see module docstring)."""

    path: Path
    manifest: dict
    combiner: CalibratedCombiner
    segment_combiner: CalibratedCombiner | None
    head_state: dict[str, torch.Tensor]
    metrics: dict
    # Combiners over parts of the evidence, kept only so the evaluation can be reproduced from the bundle.
    ablation: dict[str, CalibratedCombiner] = field(default_factory=dict)
    # LoRA factors of the discrepancy-trained top blocks (empty: the bundle has no tuned evidence)
    adapter_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @classmethod
    def load(cls, name_or_path: str | Path) -> Bundle:
        path = resolve_bundle_path(name_or_path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            combiners = json.loads((path / "combiner.json").read_text())
            head_state = load_file(str(path / "head.safetensors"))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise BundleError(f"bundle at {path} is incomplete or corrupt: {exc}") from exc
        if manifest.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"bundle format {manifest.get('format_version')} is not {FORMAT_VERSION}")
        metrics_path = path / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        seg = combiners.get("segment")
        ablation = {k: CalibratedCombiner.from_dict(v) for k, v in combiners.get("ablation", {}).items()}
        adapter_state = {}
        if "tuned_discrepancy" in manifest.get("evidence", {}):
            try:
                adapter_state = load_file(str(path / ADAPTER_FILE))
            except OSError as exc:
                raise BundleError(f"bundle at {path} names tuned evidence but its adapter is missing: {exc}") from exc
        return cls(path=path, manifest=manifest, combiner=CalibratedCombiner.from_dict(combiners["document"]),
                   segment_combiner=CalibratedCombiner.from_dict(seg) if seg else None,
                   head_state=head_state, metrics=metrics, ablation=ablation, adapter_state=adapter_state)

    def save(self, path: Path | None = None) -> Path:
        path = Path(path or self.path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "manifest.json").write_text(json.dumps(self.manifest, indent=2) + "\n")
        combiners = {"document": self.combiner.to_dict(),
                     "segment": self.segment_combiner.to_dict() if self.segment_combiner else None,
                     "ablation": {k: v.to_dict() for k, v in self.ablation.items()}}
        (path / "combiner.json").write_text(json.dumps(combiners, indent=1) + "\n")
        save_file({k: v.contiguous() for k, v in self.head_state.items()}, str(path / "head.safetensors"))
        (path / "metrics.json").write_text(json.dumps(self.metrics, indent=2) + "\n")
        if self.adapter_state:
            save_file({k: v.contiguous() for k, v in self.adapter_state.items()}, str(path / ADAPTER_FILE))
        self.path = path
        return path

    def check_backbone(self, lm: LanguageModel) -> None:
        """Refuse a language model other than the one this bundle was trained with."""
        expected = self.manifest["backbone"]
        same = (lm.weights_sha256 == expected["weights_sha256"]) if expected["weights_sha256"] \
            else lm.spec == expected["spec"]
        if not same:
            raise BundleError(
                f"bundle {self.name!r} was trained on {expected['identity']} but the language model offered is "
                f"{lm.identity}; a bundle only runs on its own backbone. Use --lm {expected['spec']} or a bundle "
                "trained for this model.")

    def build_head(self, lm: LanguageModel) -> ClassifierHead | LinearProbe | RoutedProbe:
        """The trained head: a linear probe (one, or one per training source behind a router), or fine-tuned
        blocks (backbone copy for structure + trained weights)."""
        if self.manifest["head"].get("kind") == "probe":
            layers = [int(x) for x in self.manifest["head"]["layers"]]
            if max(layers) > lm.num_layers:
                raise BundleError(f"probe layers {layers} do not exist in a {lm.num_layers}-layer backbone")
            if self.manifest["head"].get("experts"):
                return RoutedProbe.from_tensors(layers, self.head_state, self.manifest["head"]["experts"])
            return LinearProbe.from_tensors(layers, self.head_state)
        k = int(self.manifest["head"]["k"])
        head = ClassifierHead.from_backbone(lm.model, k)
        missing, unexpected = head.load_state_dict(
            {k_: v.float() for k_, v in self.head_state.items()}, strict=False)
        missing = [m for m in missing if m in head.trainable_state_dict()]
        if missing or unexpected:
            raise BundleError(f"head weights do not fit the backbone: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
        return head.to(lm.device).eval()

    def build_fork(self, lm: LanguageModel) -> TunedTop | None:
        """The discrepancy-trained top blocks (a copy of the backbone's top k with the bundle's LoRA deltas
        merged), or None when the bundle has no tuned evidence."""
        spec = self.manifest.get("evidence", {}).get("tuned_discrepancy")
        if not spec:
            return None
        try:
            window = None if spec.get("window") is None else int(spec["window"])
            top = TunedTop(lm.model, int(spec["k"]), window)
            return top.merge_lora(self.adapter_state, float(spec["scale"]))
        except (KeyError, ValueError) as exc:
            raise BundleError(f"the tuned evidence of bundle {self.name!r} does not fit the backbone: {exc}") from exc
