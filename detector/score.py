"""The result of scoring one text: a small JSON-friendly dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
