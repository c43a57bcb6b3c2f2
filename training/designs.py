"""What a candidate head design is, and which candidates the design grid tries.

A design is a head (a linear probe on pooled hidden states, one routed probe per training source, or fine-tuned
top blocks) plus the zero-shot evidence its combiner sees beside the head's logit. Designs are compared by the
leave-one-source-out table (``training.design_grid``), never by the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import Config

# Probe regularisation tried by the grid. Stronger L2 travels better to sources the probe never saw, so the grid
# reaches down to 0.0005. See docs/decisions.md.
PROBE_C_GRID = (0.0005, 0.002, 0.01)
# Routed probes (one expert per training source + a source router, ``detector.probe.RoutedProbe``): their
# regularisation in the default grid (``--heads probe`` leaves them out). See docs/decisions.md.
ROUTED_C_GRID = (0.0005, 0.002)
# Fine-tuned top-blocks head (``--heads ... blocks``): epochs and learning rate of the blocks (depths:
# ``--block-k``). See docs/decisions.md.
BLOCKS_EPOCHS = 3
BLOCKS_LR = 5e-5


@dataclass(frozen=True)
class ProbeDesign:
    """One candidate head and the evidence beside it: the probe's regularisation, the cached depths it reads,
    and which zero-shot features the combiner sees next to the head's logit: ``"all"`` of them, or only
    ``"best"``, the single feature with the best AUROC on the fit rows. A combiner over 23 features can learn
    the training sources' feature directions (DetectRL's, HC3's), which do not carry to a new collection; the
    sparse one cannot, so the leave-one-source-out table decides between them."""

    C: float
    layers: tuple[int, ...]
    zero_shot: str = "all"
    routed: bool = False  # one probe per training source, mixed by a source router (``RoutedProbe``)

    @property
    def name(self) -> str:
        extra = "" if self.zero_shot == "all" else ", best zero-shot feature only"
        return f"{'routed probe' if self.routed else 'probe'} C={self.C} layers={list(self.layers)}{extra}"


@dataclass(frozen=True)
class BlocksDesign:
    """A fine-tuned copy of the backbone's top ``k`` blocks + a linear score on each token, token-mean pooled
    (``detector.classifier``), trained on the hidden state the LM pass cached. Too costly to cross-fit, so its
    training rows' logits are in-sample and the combiner is fit on calibration rows only."""

    k: int
    zero_shot: str = "all"
    epochs: int = BLOCKS_EPOCHS
    lr: float = BLOCKS_LR

    @property
    def name(self) -> str:
        extra = "" if self.zero_shot == "all" else ", best zero-shot feature only"
        return f"fine-tuned top {self.k} blocks{extra}"


# Any candidate head design of the grid.
Design = ProbeDesign | BlocksDesign


def head_designs(cfg: Config, layers: tuple[int, ...]) -> list[Design]:
    """Every head design of the grid: the probe designs, and routed probes and fine-tuned blocks when
    ``cfg.heads`` asks."""
    out: list[Design] = probe_designs(layers) if "probe" in cfg.heads else []
    if "routed" in cfg.heads:
        out += routed_designs(layers)
    if "blocks" in cfg.heads:
        out += [BlocksDesign(k, zs) for zs in ("all", "best") for k in cfg.block_k]
    return out


def probe_designs(layers: tuple[int, ...]) -> list[ProbeDesign]:
    """The candidates compared by leave-one-source-out mean: all cached depths or the three-quarter depth
    alone, each regularisation, all or only the best zero-shot feature beside the head."""
    return [ProbeDesign(C, ls, zs) for zs in ("all", "best") for ls in (layers, (layers[-2],)) for C in PROBE_C_GRID]


def routed_designs(layers: tuple[int, ...]) -> list[ProbeDesign]:
    """Routed probes (``--heads ... routed``) on every cached depth, all or only the best zero-shot feature."""
    return [ProbeDesign(C, layers, zs, routed=True) for zs in ("all", "best") for C in ROUTED_C_GRID]


def combiner_rows(design: Design, train: np.ndarray, cal: np.ndarray) -> np.ndarray:
    """Rows the combiner is fit on: train + cal when the head's train logits are cross-fitted, else cal only."""
    return cal if isinstance(design, BlocksDesign) else np.concatenate([train, cal])
