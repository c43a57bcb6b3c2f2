"""The result of scoring one text: a small JSON-friendly dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from detector.display import AI_LINE_NOTE, HUMAN_LINE_NOTE, format_line, reading

# Verdict labels, shared by the API, the batch command and the page.
AI = "ai"
HUMAN = "human"
UNCERTAIN = "uncertain"
INSUFFICIENT_TEXT = "insufficient_text"
UNSUPPORTED_LANGUAGE = "unsupported_language"
ERROR = "error"
LABELS = (AI, HUMAN, UNCERTAIN, INSUFFICIENT_TEXT, UNSUPPORTED_LANGUAGE, ERROR)
# Labels for which no probability is shown: the detector abstains.
ABSTAIN_LABELS = (INSUFFICIENT_TEXT, UNSUPPORTED_LANGUAGE, ERROR)


def line_notes(prob_ai: float | None, label: str | None, threshold_ai: float | None,
               threshold_human: float | None) -> list[str]:
    """Warning codes for an ``uncertain`` verdict whose printed number does not show why it is uncertain
    (``detector.display`` prints the numbers; ``Score`` adds these codes to its ``warnings``).

    The verdict compares the uncapped score with the lines, the reader sees the rounded, capped number: a score
    of 0.9993 under an `ai` line of 0.9995 prints as ``> 0.999``, and a reader of ``> 0.999  uncertain`` needs
    to be told the line is higher still. A note is given when the printed number reads at or above the `ai`
    line printed the same way (or at or below the `human` line), naming the line to four decimals. ``ai`` and
    ``human`` verdicts never need one: rounding and the cap keep their order with the lines.
    """
    if label != UNCERTAIN or prob_ai is None or not math.isfinite(float(prob_ai)):
        return []
    notes = []
    if threshold_ai is not None and reading(prob_ai) >= reading(threshold_ai):
        notes.append(AI_LINE_NOTE + format_line(threshold_ai))
    if threshold_human is not None and reading(prob_ai) <= reading(threshold_human):
        notes.append(HUMAN_LINE_NOTE + format_line(threshold_human))
    return notes


@dataclass
class Segment:
    """A sentence (or window) of the scored text and its own P(AI), for highlighting."""

    start: int
    end: int
    prob_ai: float | None


@dataclass
class TokenView:
    """One scored token for a GLTR-style view: its span, rank (1 = top choice) and probability."""

    start: int
    end: int
    rank: int
    prob: float


@dataclass
class Score:
    """Calibrated verdict for one text.

    ``prob_ai`` is None when the detector abstains (see ABSTAIN_LABELS). ``text`` is the
    normalised text that ``segments``/``tokens`` offsets point into. ``bundle`` names the bundle the
    text was routed to (``detector.router``), so a mixed-language batch says which detector gave each verdict.
    """

    prob_ai: float | None
    label: str
    n_tokens: int = 0
    lang: str | None = None
    features: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    text: str = ""
    tokens: list[TokenView] | None = None
    threshold_ai: float | None = None
    threshold_human: float | None = None
    bundle: str | None = None

    def __post_init__(self) -> None:
        """Say on the score itself when its printed number cannot show why it is ``uncertain``: e.g. a score
        printed as "> 0.999" under an `ai` line of 0.9995 gets ``ai_line_above_shown_probability_0.9995``
        (``line_notes``), so the API, the batch rows and the page all carry the reason."""
        notes = [n for n in line_notes(self.prob_ai, self.label, self.threshold_ai, self.threshold_human)
                 if n not in self.warnings]
        if notes:
            self.warnings = [*self.warnings, *notes]

    @property
    def max_segment_prob_ai(self) -> float | None:
        probs = [s.prob_ai for s in self.segments if s.prob_ai is not None]
        return max(probs) if probs else None

    def to_dict(self, include_text: bool = False) -> dict:
        """Plain dict (JSON-serialisable); the text is left out unless asked for."""
        out = asdict(self)
        if not include_text:
            out.pop("text")
        out["max_segment_prob_ai"] = self.max_segment_prob_ai
        return out
