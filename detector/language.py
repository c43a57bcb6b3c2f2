"""Cheap language identification (py3langid: a maintained fork of langid.py, pure numpy, ~0.1 ms/text).

A bundle is trained on some languages; text in another language is answered with
``unsupported_language`` instead of being scored as if it were, say, English.
"""

from __future__ import annotations

import functools
import unicodedata

# Below this confidence the language call is treated as unknown rather than foreign.
MIN_CONFIDENCE = 0.9
# Texts with fewer letters than this are too short to identify.
MIN_LETTERS = 20
# Languages written in Latin script; a text mostly in another script cannot be one of them.
LATIN_SCRIPT_LANGUAGES = frozenset("en de fr es it pt nl sv da no nb fi pl cs sk sl hr ro hu tr id ms vi".split())
MAX_FOREIGN_SCRIPT_SHARE = 0.5


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


def non_latin_share(text: str) -> float:
    """Share of the letters that are not Latin script (CJK, Cyrillic, Arabic, ...)."""
    letters = [ch for ch in text[:5000] if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(not unicodedata.name(ch, "").startswith("LATIN") for ch in letters) / len(letters)


def is_supported(lang: str | None, confidence: float, supported: list[str], text: str = "") -> bool:
    """Unsupported when confidently identified as another language, or when a Latin-script bundle
    meets a text mostly in another script (langid is less sure on short CJK texts)."""
    if lang is None or lang in supported:
        return True
    if confidence >= MIN_CONFIDENCE:
        return False
    latin_only = all(code in LATIN_SCRIPT_LANGUAGES for code in supported)
    return not (latin_only and non_latin_share(text) > MAX_FOREIGN_SCRIPT_SHARE)
