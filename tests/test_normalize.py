"""Text normalisation: invisible characters, look-alike glyphs, NFKC, surrounding whitespace."""

from __future__ import annotations

import pytest

from detector.normalize import normalize_text


def test_clean_text_unchanged() -> None:
    result = normalize_text("A plain sentence, nothing to fix.")
    assert result.text == "A plain sentence, nothing to fix."
    assert result.warnings == [] and not result.changed


def test_zero_width_removed_with_warning() -> None:
    result = normalize_text("in\u200bvisi\u200dble\ufeff text")
    assert result.text == "invisible text"
    assert result.warnings == ["removed_3_zero_width_chars"]
    assert result.changed


def test_homoglyphs_mapped_inside_latin_words() -> None:
    # Cyrillic а and о hidden in English words
    result = normalize_text("p\u0430yp\u0430l l\u043egin")
    assert result.text == "paypal login"
    assert result.warnings == ["replaced_3_homoglyphs"]


def test_russian_words_stay_russian() -> None:
    russian = "\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"  # "привет мир"
    assert normalize_text(russian).text == russian
    assert normalize_text(russian).warnings == []
    mixed = normalize_text(f"Hello {russian}, and p\u0430y now")
    assert mixed.text == f"Hello {russian}, and pay now"  # only the Latin word is touched
    assert mixed.warnings == ["replaced_1_homoglyphs"]


def test_greek_word_stays_greek() -> None:
    greek = "\u03ba\u03b1\u03bb\u03bf"  # "καλο": contains α and ο, which are homoglyphs inside Latin words
    assert normalize_text(greek).text == greek


@pytest.mark.parametrize(("raw", "expected"), [
    ("\ufb01ne", "fine"),  # ligature fi
    ("\uff21\uff22\uff23 123", "ABC 123"),  # full-width letters
    ("x\u00b2", "x2"),  # superscript two
    ("cafe\u0301", "caf\u00e9"),  # decomposed accent is composed
])
def test_nfkc(raw: str, expected: str) -> None:
    result = normalize_text(raw)
    assert result.text == expected
    assert "unicode_normalized" in result.warnings


def test_surrounding_whitespace_stripped_silently() -> None:
    result = normalize_text("  \n\tSome text here.\n\n  ")
    assert result.text == "Some text here."
    assert result.warnings == []


def test_leading_newline_does_not_change_text() -> None:
    text = "The essay begins here.\nSecond line."
    assert normalize_text("\n" + text).text == normalize_text(text).text == "The essay begins here. Second line."
    assert normalize_text("\n" + text).warnings == []


def test_control_chars_and_line_endings() -> None:
    result = normalize_text("one\x00two\r\nthree\rfour")
    assert result.text == "one two three four"
    assert result.warnings == ["replaced_1_control_chars"]


def test_empty() -> None:
    assert normalize_text("").text == ""
    assert normalize_text(" \u200b ").text == ""


def test_layout_cannot_decide() -> None:
    """Paragraphs joined, split at every sentence, or double-spaced: the model sees one text (no layout shortcut)."""
    joined = "First sentence here. Second one follows. A third closes it."
    split = "First sentence here.\nSecond one follows.\n\nA third closes it.\n"
    spaced = "First  sentence here.   Second one follows.\tA third closes it."
    assert normalize_text(split).text == normalize_text(spaced).text == normalize_text(joined).text == joined


def test_tokenised_corpus_spacing_undone() -> None:
    assert normalize_text("Why is milk cheap ? It 's ( in the us ) odd , do n't you think .").text == \
        "Why is milk cheap? It's (in the us) odd, don't you think."


def test_cjk_line_breaks_vanish() -> None:
    assert normalize_text("第一句。\n第二句。").text == "第一句。第二句。"
