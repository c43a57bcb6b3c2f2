"""Sentence spans from the punctuation rule."""

from __future__ import annotations

import pytest

from detector.sentences import sentence_spans


def sentences(text: str) -> list[str]:
    """The sentence strings of ``text``, checking the spans are trimmed and in order."""
    spans = sentence_spans(text)
    for (s, e), nxt in zip(spans, spans[1:] + [(len(text), len(text))]):
        assert 0 <= s < e <= nxt[0]
        assert text[s:e] == text[s:e].strip()
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello world. How are you? Fine!", ["Hello world.", "How are you?", "Fine!"]),
    ("First one. second without an end", ["First one.", "second without an end"]),
    ("No punctuation at all", ["No punctuation at all"]),
    ("Title\n\nBody text here. More text.", ["Title", "Body text here.", "More text."]),
    ("Para one line\nstill para one\n\n  \nPara two", ["Para one line\nstill para one", "Para two"]),
    ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
    ("It costs 3.14 dollars. Cheap (really.) Yes", ["It costs 3.14 dollars.", "Cheap (really.)", "Yes"]),
    ("Wait... what?! OK.", ["Wait...", "what?!", "OK."]),
    ("  Leading and trailing spaces.   ", ["Leading and trailing spaces."]),
    ("\u4f60\u597d\u3002\u4e16\u754c\uff01\u518d\u89c1", ["\u4f60\u597d\u3002", "\u4e16\u754c\uff01", "\u518d\u89c1"]),
    ("\u4f60\u597d!\u518d\u89c1", ["\u4f60\u597d!", "\u518d\u89c1"]),  # NFKC turns \uff01 into "!"
])
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_exact_offsets() -> None:
    assert sentence_spans("  Hi there.  Bye.") == [(2, 11), (13, 17)]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n"])
def test_no_sentences(text: str) -> None:
    assert sentence_spans(text) == []
