"""No layout shortcut: paragraphs joined, split at every sentence, or spaced differently score the same.

Why: corpora leak labels through layout (about 90% of Lastde's AI texts contain a newline, none of its human
texts do; HC3-Plus human texts carry tokenised-corpus spacing). A model that sees layout learns it.
"""

from __future__ import annotations

import re

import pytest

ESSAY = (
    "School uniforms are a topic that divides parents. Some say they save money and stop bullying about clothes. "
    "Others argue that children should learn to express themselves. In my town the school tried uniforms for one "
    "year and then dropped them. Nobody could agree whether anything had changed."
)
# Long enough for the shipped bundle to answer (its `min_tokens` is set from data and was 128 tokens).
LONG_ESSAY = ESSAY + (
    " My sister wore the uniform that year and hated the itchy jumper, but she liked not having to choose. "
    "Her friend said the mornings were calmer at home. The head teacher wrote to us in June and said attendance "
    "was about the same as before. A few parents wanted the money back for blazers that no longer fitted. "
    "The council asked the school to write a report, and the report said the evidence was mixed. "
    "Looking back, I think the argument was never really about clothes. It was about who gets to decide what "
    "children look like, and whether a school can teach belonging by making everyone look the same."
)


def _layouts(text: str) -> dict[str, str]:
    sentences = re.split(r"(?<=[.!?]) ", text)
    return {
        "one_paragraph": text,
        "sentence_per_line": "\n".join(sentences),
        "paragraphs": " ".join(sentences[:2]) + "\n\n" + " ".join(sentences[2:]),
        "leading_newline_double_spaces": "\n" + "  ".join(sentences) + "\n",
    }


def _assert_layout_invariant(detector, text: str) -> None:
    scores = {name: detector.score(t) for name, t in _layouts(text).items()}
    base = scores["one_paragraph"]
    for name, s in scores.items():
        assert s.label == base.label, name
        assert s.prob_ai is not None and abs(s.prob_ai - base.prob_ai) <= 0.05, (name, s.prob_ai, base.prob_ai)


def test_layout_does_not_move_the_score(tiny_detector) -> None:
    _assert_layout_invariant(tiny_detector, ESSAY)


@pytest.mark.slow
def test_layout_does_not_move_the_shipped_score() -> None:
    from detector import Detector

    detector = Detector.load(bundle="smollm2-en")
    assert detector.score(LONG_ESSAY).n_tokens >= detector.min_tokens  # a verdict to compare
    _assert_layout_invariant(detector, LONG_ESSAY)
