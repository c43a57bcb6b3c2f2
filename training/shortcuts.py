"""Remove the label shortcuts that training collections leak through markup rather than wording.

Why: in `l2r` and `biscope` (``../shared/data/*/README.md``) the AI texts, and almost never the human ones,
carry a ``Title:`` line or a Markdown heading first, ``**bold**`` markup, or a chat preamble ("Here is an
enhanced version of the text:", "Okay, so imagine ..."), and every Gemini-1.5 rewrite ends with a newline.
A model shown them learns layout, not writing. Whitespace is already collapsed by
``detector.normalize.normalize_layout`` at scoring time; what is cut here is markup a user's pasted text
would rarely carry, so it is removed from training texts only (and from both classes alike).
"""

from __future__ import annotations

import re

# A first line that is a title or heading: "Title: ...", "# Heading", "**A Bold Line**", "Heading:" alone.
_TITLE_LINE_RE = re.compile(r"^\s*(?:title\s*:[^\n]*|#{1,6}\s[^\n]*|\*\*[^\n*]{1,150}\*\*:?|__[^\n_]{1,150}__:?)\s*\n",
                            re.IGNORECASE)
# Any later Markdown heading line.
_HEADING_LINE_RE = re.compile(r"^\s*#{1,6}\s+[^\n]*$", re.MULTILINE)
# Emphasis markers; their words stay.
_EMPHASIS_RE = re.compile(r"\*\*|__|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")
# A leading chat preamble that ends in a colon ("Sure, here's ...:", "Here is my attempt to ...:",
# "Okay, so imagine this:"), or a one-sentence announcement ("Here's a breakdown of the text.").
_PREAMBLE_RE = re.compile(
    r"^\s*(?:sure|certainly|of course|okay|ok|alright|absolutely|here is|here's|here are|below is|this is "
    r"(?:a|an|the) (?:rewritten|revised|enhanced|polished|paraphrased))\b[^:\n]{0,200}:\s*",
    re.IGNORECASE)
_ANNOUNCE_RE = re.compile(
    r"^\s*(?:here is|here's|here are|below is)\b[^.!?\n]{0,160}(?:version|rewrite|text|breakdown|summary|"
    r"paraphrase|attempt)[^.!?\n]{0,80}[.!]\s+", re.IGNORECASE)


def strip_shortcuts(text: str) -> str:
    """``text`` without a leading title/heading line, heading lines, emphasis markers or a chat preamble.

    Returns the original text (stripped) when cleaning would leave nothing, so no row is lost.
    """
    out = text.strip()
    for _ in range(2):  # a preamble may precede a title, or the other way round
        out = _PREAMBLE_RE.sub("", out, count=1)
        out = _ANNOUNCE_RE.sub("", out, count=1)
        out = _TITLE_LINE_RE.sub("", out + "\n", count=1).strip()
    out = _HEADING_LINE_RE.sub("", out)
    out = _EMPHASIS_RE.sub("", out)
    out = out.strip()
    return out or text.strip()
