"""How a probability is printed, everywhere a reader sees one: the batch table, the web page, the API's notes.

Why one module: the number shown and the verdict must never contradict each other. A table that printed
``uncertain  1.00`` told a reader "certainly AI, but undecided". So every printed P(AI) goes through
``format_probability`` (three decimals, never ``1.000``/``0.000``: at the display cap it says ``> 0.999`` /
``< 0.001``), and where the shown number still cannot tell the reader why the verdict is ``uncertain`` (the
score is below the ``ai`` line, but the line is above the cap or within the rounding), ``detector.score.line_notes``
names the line. It imports nothing from the project (``detector.score`` builds on it) and no numpy, so the CLI and
the page import it cheaply. Files and JSON keep ``prob_ai`` a number (the capped probability); only what is
printed is text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

# What a reader is shown: a calibration set of thousands of texts cannot support certainty beyond about 1 in
# 1000, so P(AI) is shown within [PROB_FLOOR, 1 - PROB_FLOOR] (``detector.combiner.displayed_probability``).
# The calibrator itself is not capped: verdict lines and rankings read the uncapped score, because a cap ties the
# surest AI texts with the top 1% of some sources' humans (the routed English probe scored 1.3% of DetectRL's
# humans at 0.999, so no `ai` line below the cap could keep that source at 1%, and the verdict went to 12 of
# 1,200 AI texts instead of 125).
PROB_FLOOR = 1e-3
DECIMALS = 3  # 1 / PROB_FLOOR: finer digits would claim more than the calibration supports
ABOVE_CAP = f"> {1 - PROB_FLOOR:.{DECIMALS}f}"  # "> 0.999"
BELOW_FLOOR = f"< {PROB_FLOOR:.{DECIMALS}f}"  # "< 0.001"

# Warning codes (``Score.warnings``, the batch ``warnings`` column) for an ``uncertain`` verdict whose shown
# number reads at or beyond a verdict line; the line follows the prefix, e.g. ``ai_line_above_shown_probability_
# 0.9995``.
AI_LINE_NOTE = "ai_line_above_shown_probability_"
HUMAN_LINE_NOTE = "human_line_below_shown_probability_"


def format_probability(p: float | None) -> str:
    """P(AI) as printed: three decimals, ``> 0.999`` at or above the display cap and ``< 0.001`` at or below the
    floor, so no printed probability is ever ``1.000`` or ``0.000`` (nor the two-decimal ``1.00``/``0.00`` that
    once sat next to ``uncertain``). None or NaN (an abstention) prints as ``-``."""
    if p is None or not math.isfinite(float(p)):
        return "-"
    p = float(p)
    if p >= 1 - PROB_FLOOR:
        return ABOVE_CAP
    if p <= PROB_FLOOR:
        return BELOW_FLOOR
    return f"{p:.{DECIMALS}f}"  # 0.9985 up to the cap prints 0.999: a plain number, inside the cap


def format_line(t: float) -> str:
    """A verdict line (threshold) as printed: four decimals, more where four would round to 0 or 1 (a line can
    sit beyond the display cap: an earlier English bundle's `ai` line was 0.9995), so a line never reads as
    ``1.0000``."""
    t = float(t)
    for decimals in range(4, 9):
        text = f"{t:.{decimals}f}"
        if 0.0 < float(text) < 1.0:
            return text
    return "> 0.99999999" if t > 0.5 else "< 0.00000001"


def reading(p: float) -> float:
    """The number a reader takes the printed probability for: "0.973" is 0.973, "> 0.999" reads as 1 and
    "< 0.001" as 0. Two scores compare the same way on the page as their readings do."""
    text = format_probability(p)
    if text == ABOVE_CAP:
        return 1.0
    if text == BELOW_FLOOR:
        return 0.0
    return float(text)


def verdict_note(warnings: Iterable[str] | None) -> str:
    """The short table note for a row's line warnings (``detector.score.line_notes``), e.g. ``below the ai line
    0.9995``; empty when there is none. Other warnings stay in the files' ``warnings`` column: the table keeps to
    the verdict."""
    out = []
    for code in warnings or ():
        if code.startswith(AI_LINE_NOTE):
            out.append(f"below the ai line {code[len(AI_LINE_NOTE):]}")
        elif code.startswith(HUMAN_LINE_NOTE):
            out.append(f"above the human line {code[len(HUMAN_LINE_NOTE):]}")
    return "; ".join(out)
