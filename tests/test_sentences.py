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
    # Chinese: 。！？； end a sentence with nothing after them (raw, and as NFKC leaves them: 。 ! ? ;)
    ("今天下雨了。我没带伞！怎么办？先等等；雨会停的。",
     ["今天下雨了。", "我没带伞！", "怎么办？", "先等等；", "雨会停的。"]),
    ("今天下雨了。我没带伞!怎么办?先等等;雨会停的。",
     ["今天下雨了。", "我没带伞!", "怎么办?", "先等等;", "雨会停的。"]),
    ("他说：“我明天再来。”然后就走了。", ["他说：“我明天再来。”", "然后就走了。"]),
    ("她问「真的吗?」我点点头。", ["她问「真的吗?」", "我点点头。"]),
    ("第一段没有句号\n\n第二段。", ["第一段没有句号", "第二段。"]),
    ("我用GPT-4写了一段代码。结果跑不通!", ["我用GPT-4写了一段代码。", "结果跑不通!"]),
    # an English semicolon is not a sentence end, nor is a decimal point in Chinese text
    ("It rained; we stayed in. Then it stopped.", ["It rained; we stayed in.", "Then it stopped."]),
    ("价格是3.5元。很便宜", ["价格是3.5元。", "很便宜"]),
])
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_exact_offsets() -> None:
    assert sentence_spans("  Hi there.  Bye.") == [(2, 11), (13, 17)]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n"])
def test_no_sentences(text: str) -> None:
    assert sentence_spans(text) == []


def test_chinese_after_normalisation() -> None:
    """What the detector really segments: the normalised text (NFKC folds the full-width ！？； to ASCII)."""
    from detector.normalize import normalize_text

    raw = "我每天坐公交车上班；车上人很多。有时候会迟到！你呢？"
    text = normalize_text(raw).text
    assert len(sentences(text)) == 4
    assert [text[e - 1] for _, e in sentence_spans(text)] == [";", "。", "!", "?"]


def test_chinese_highlighting_covers_each_sentence() -> None:
    """The page shades sentence by sentence: every Chinese sentence gets its own span, the text is kept whole."""
    from detector.explain import highlight_html
    from detector.score import Segment

    text = "今天下雨了。我没带伞!怎么办?"
    segments = [Segment(s, e, p) for (s, e), p in zip(sentence_spans(text), (0.1, 0.5, 0.9))]
    html = highlight_html(text, segments)
    for s, e in sentence_spans(text):
        assert text[s:e] in html
