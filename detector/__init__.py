"""AI-generated-text detector: ``Detector.load().score(text)`` -> calibrated ``Score``.

Names are resolved lazily so ``import detector`` (and ``python -m detector --help``) does not
pay for importing torch until a model is actually needed.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Detector": "detector.detector",
    "Score": "detector.score",
    "Segment": "detector.score",
    "BundleError": "detector.bundle",
    "BackboneError": "detector.lm",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
