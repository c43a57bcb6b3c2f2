"""AI-generated-text detector: ``detector.load().score(text)`` -> calibrated ``Score``.

``load()`` is the entry point: with no bundle it returns a ``Router`` that sends each text to the bundle for its
language; with a bundle (or a backbone) one ``Detector``. Names are resolved lazily so ``import detector`` (and
``python -m detector --help``) does not pay for importing torch until a model is actually needed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detector.detector import Detector
    from detector.router import Router

_EXPORTS = {
    "Detector": "detector.detector",
    "Router": "detector.router",
    "Score": "detector.score",
    "Segment": "detector.score",
    "BundleError": "detector.bundle",
    "BackboneError": "detector.lm",
}
__all__ = ["load", *_EXPORTS]


def load(bundle: str | Path | None = None, lm: str | None = None, device: str | None = None,
         dtype: str | None = None) -> Detector | Router:
    """The detector to score with; repeated loads reuse it (and its models). Thread-safe.

    With neither ``bundle`` nor ``lm``: a ``Router`` over the shipped bundles (same scoring API as a Detector),
    which sends each text to the bundle for its language and loads a bundle only when a text needs it. Otherwise
    ``Detector.load(bundle, lm, ...)``: one bundle (``bundle``: a name or folder; ``lm`` alone: the shipped
    bundle trained on that backbone) for every text. ``dtype``: see ``Detector.load``.
    """
    if bundle is None and lm is None:
        from detector.router import Router

        return Router.load(device=device, dtype=dtype)
    from detector.detector import Detector

    return Detector.load(bundle, lm, device=device, dtype=dtype)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
