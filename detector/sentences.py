"""Sentence spans by a punctuation rule: no model download, good enough for burstiness and highlighting."""

from __future__ import annotations

import re

# A sentence ends at . ! ? plus closing quotes/brackets, followed by space, end or a CJK character;
# at CJK 。！？； (plus closing quotes/brackets) whatever follows, since CJK text puts no space between
# sentences; a blank line always ends one. NFKC (detector.normalize) turns ！？； into !?;, hence the CJK
# lookahead above and the ";" rule: a semicolon right after a CJK character ends a Chinese clause-sentence,
# while an English semicolon does not end a sentence.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CLOSERS = "\"'”’)\\]」』）"
_BOUNDARY_RE = re.compile(
    rf"(?<=[.!?])[{_CLOSERS}]*(?=\s|$|[{_CJK}])|(?<=[。！？；])[{_CLOSERS}]*|(?<=[{_CJK}];)[{_CLOSERS}]*|\n\s*\n"
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of ``text``, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY_RE.finditer(text):
        end = match.end()
        _add_span(text, start, end, spans)
        start = end
    _add_span(text, start, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped:
        return
    lead = len(chunk) - len(chunk.lstrip())
    spans.append((start + lead, start + lead + len(stripped)))
