"""Text normalisation before tokenising: the same for training and scoring.

Why: invisible characters and look-alike glyphs change tokenisation (and are a known
evasion trick), and surrounding whitespace is a shortcut some datasets leak (AI texts
starting with a newline). Every change is recorded so the user can be warned.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Zero-width and other invisible format characters that carry no visible text.
ZERO_WIDTH_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061-\u2064]")
# Cyrillic/Greek letters that look like Latin ones; mapped only inside otherwise-Latin words.
HOMOGLYPHS = str.maketrans({
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
    "\u0445": "x", "\u0456": "i", "\u0458": "j", "\u0455": "s", "\u04bb": "h", "\u0501": "d",
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H",
    "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X", "\u0406": "I",
    "\u03bf": "o", "\u03b1": "a", "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0397": "H",
    "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P",
    "\u03a4": "T", "\u03a7": "X", "\u0396": "Z",
})
_WORD_RE = re.compile(r"\w+")
_LATIN_RE = re.compile(r"[A-Za-z]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Layout: every run of whitespace (newlines, tabs, doubled spaces) becomes one space, so line breaks,
# paragraphing and spacing cannot decide a score. Needed because corpora leak labels through layout:
# ~90% of Lastde's AI texts contain a newline and none of its human texts do (see README, "Shortcuts").
_WHITESPACE_RE = re.compile(r"\s+")
# Tokenised-corpus spacing ("word , word", "it 's", "( us )"): a third of HC3-Plus's English human texts have it
# and almost none of its AI texts do, so it is undone before the model sees the text.
_SPACE_BEFORE_RE = re.compile(r" ([.,!?;:%)\]}]|'s\b|'re\b|'ve\b|'ll\b|'d\b|'m\b|n't\b)")
_SPACE_AFTER_RE = re.compile(r"([(\[{]) ")
# Chinese/Japanese do not separate words or sentences with spaces: a line break there becomes nothing.
_CJK = "\u3000-\u303f\u3040-\u30ff\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_SPACE_RE = re.compile(f"(?<=[{_CJK}]) | (?=[{_CJK}])")


@dataclass
class NormalizedText:
    """The normalised text and what normalisation did to it."""

    text: str
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.warnings)


def _fix_homoglyphs(text: str) -> tuple[str, int]:
    count = 0

    def fix(match: re.Match) -> str:
        nonlocal count
        word = match.group(0)
        if not _LATIN_RE.search(word):
            return word  # a genuinely Cyrillic/Greek word stays as it is
        fixed = word.translate(HOMOGLYPHS)
        count += sum(a != b for a, b in zip(word, fixed))
        return fixed

    return _WORD_RE.sub(fix, text), count


def normalize_layout(text: str) -> str:
    """One space for every whitespace run, no space before closing punctuation or after opening brackets."""
    out = _WHITESPACE_RE.sub(" ", text).strip()
    out = _SPACE_BEFORE_RE.sub(r"\1", out)
    out = _CJK_SPACE_RE.sub("", out)
    return _SPACE_AFTER_RE.sub(r"\1", out)


def normalize_text(text: str) -> NormalizedText:
    """NFKC, drop zero-width/control characters, map in-word homoglyphs, normalise layout (``normalize_layout``)."""
    warnings: list[str] = []
    out = unicodedata.normalize("NFKC", text)
    if out != text:
        warnings.append("unicode_normalized")
    n_zw = len(ZERO_WIDTH_RE.findall(out))
    if n_zw:
        out = ZERO_WIDTH_RE.sub("", out)
        warnings.append(f"removed_{n_zw}_zero_width_chars")
    n_ctrl = len(_CONTROL_RE.findall(out))
    if n_ctrl:
        out = _CONTROL_RE.sub(" ", out)
        warnings.append(f"replaced_{n_ctrl}_control_chars")
    out, n_homo = _fix_homoglyphs(out)
    if n_homo:
        warnings.append(f"replaced_{n_homo}_homoglyphs")
    # Layout is not recorded as a change: collapsing whitespace is routine and loses no words.
    return NormalizedText(normalize_layout(out), warnings)
