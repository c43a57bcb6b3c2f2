"""Cheap language identification (py3langid: a maintained fork of langid.py, pure numpy, ~0.1 ms/text).

A bundle is trained on some languages; text in another language is answered with
``unsupported_language`` instead of being scored as if it were, say, English.
"""

from __future__ import annotations

import functools

# Below this confidence the language call is treated as unknown rather than foreign.
MIN_CONFIDENCE = 0.9
# Texts with fewer letters than this are too short to identify.
MIN_LETTERS = 20


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> tuple[str | None, float]:
    """(ISO 639-1 code, confidence in [0, 1]); (None, 0.0) for texts with too few letters."""
    if sum(ch.isalpha() for ch in text[:5000]) < MIN_LETTERS:
        return None, 0.0
    lang, conf = _identifier().classify(text[:5000])
    return str(lang), float(conf)


def is_supported(lang: str | None, confidence: float, supported: list[str]) -> bool:
    """Unsupported only when confidently identified as a language outside ``supported``."""
    return lang is None or lang in supported or confidence < MIN_CONFIDENCE
