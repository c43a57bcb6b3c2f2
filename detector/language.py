"""Cheap language identification: a script check for Chinese, else py3langid (a maintained fork of langid.py,
pure numpy, ~0.1 ms/text).

A bundle is trained on some languages; text in another language is answered with
``unsupported_language`` instead of being scored as if it were, say, English. The router
(``detector.router``) uses the same call to pick the bundle trained for a text's language.

Why a script check first: langid is unsure on short Chinese texts (a 14-character sentence has too few
"letters" for it, and a mixed sentence such as "AI模型GPT-4和Claude在2024年发布了新版本" got 0.81), while
text written mostly in Han ideographs with no kana or hangul is Chinese (Japanese always has kana).
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
# Chinese by script: more than this share of the letters are Han ideographs, almost none kana/hangul,
# and at least HAN_MIN_LETTERS of them (one Han character carries about as much as a short word).
MIN_HAN_SHARE = 0.5
MAX_KANA_HANGUL_SHARE = 0.02
HAN_MIN_LETTERS = 8


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def script_counts(text: str) -> tuple[int, int, int]:
    """(letters, Han ideographs, kana + hangul) among the first 5000 characters."""
    letters = han = kana_hangul = 0
    for ch in text[:5000]:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
            han += 1
        elif name.startswith(("HIRAGANA", "KATAKANA", "HANGUL")):
            kana_hangul += 1
    return letters, han, kana_hangul


def chinese_by_script(text: str) -> float | None:
    """The Han share of the letters when the text is Chinese by its script (see module docstring), else None."""
    letters, han, kana_hangul = script_counts(text)
    if han < HAN_MIN_LETTERS or han / letters <= MIN_HAN_SHARE or kana_hangul / letters >= MAX_KANA_HANGUL_SHARE:
        return None
    return han / letters


def detect_language(text: str) -> tuple[str | None, float]:
    """(ISO 639-1 code, confidence in [0, 1]); (None, 0.0) for texts with too few letters.

    Chinese is decided by script first (confidence = the Han share of the letters), everything else by langid.
    """
    han_share = chinese_by_script(text)
    if han_share is not None:
        return "zh", float(han_share)
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
