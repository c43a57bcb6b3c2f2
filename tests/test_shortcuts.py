"""Markup shortcuts of the training collections are cut before a model sees a text; the words stay."""

from __future__ import annotations

import pytest

from training.shortcuts import strip_shortcuts


@pytest.mark.parametrize(("raw", "clean"), [
    ("Title: My Day\nI went to the park.", "I went to the park."),
    ("# Heading\nText here **bold** and *this*.", "Text here bold and this."),
    ("**The Big Story**\nOnce upon a time.", "Once upon a time."),
    ("Here is an enhanced version of the text:\n\nThe cat sat.", "The cat sat."),
    ("Sure, here's a possible continuation of the review: It was great.", "It was great."),
    ("Here's a breakdown of the main points.  The law says X.", "The law says X."),
])
def test_markup_and_preambles_are_cut(raw: str, clean: str) -> None:
    assert strip_shortcuts(raw) == clean


@pytest.mark.parametrize("text", ["I said: 3 * 4 = 12 and a*b.", "Here in Paris: we eat.", "Plain human prose."])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert strip_shortcuts(text) == text


def test_nothing_is_lost_when_only_markup_is_left() -> None:
    assert strip_shortcuts("**Title only**") == "**Title only**"
