"""The one rule for printed probabilities (detector.display): never "1.00"/"0.00", never a number the verdict
contradicts without saying why.

Why: the batch table once printed ``ai_reading_habits.txt  uncertain  1.00``, which reads "certainly AI, yet
undecided". The verdict compares the uncapped score with the lines; what is printed is capped and rounded, so an
`uncertain` text just under an `ai` line of 0.9995 prints as "> 0.999" and must carry the line that explains it.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from detector import batch, explain
from detector.combiner import PROB_FLOOR, displayed_probability
from detector.display import (
    ABOVE_CAP,
    AI_LINE_NOTE,
    BELOW_FLOOR,
    HUMAN_LINE_NOTE,
    format_line,
    format_probability,
    reading,
    verdict_note,
)
from detector.documents import text_document
from detector.score import AI, HUMAN, INSUFFICIENT_TEXT, UNCERTAIN, Score, line_notes

REPO = Path(__file__).resolve().parents[1]
PRINTED = re.compile(r"< 0\.001|> 0\.999|0\.\d{3}")
# What must never be printed for a probability: certainty the calibration cannot support.
CERTAIN = re.compile(r"(?<![\d.])[01]\.0+(?!\d)")
SHIPPED_AI_LINE = 0.9994514545313316  # an `ai` line above the display cap of 0.999 (an earlier smollm2-en's)


def _grid() -> list[float]:
    """Every region that matters: the ends, around the cap and the floor, rounding edges, and random values."""
    rng = np.random.default_rng(0)
    edges = [0.0, 1e-9, 1e-4, 0.0005, 0.001, 0.0010001, 0.0014999, 0.0015, 0.002, 0.0049, 0.005, 0.0051, 0.5,
             0.9949, 0.995, 0.9951, 0.998, 0.9984999, 0.9985, 0.9989999, 0.999, 0.9990001, 0.9994, 0.9995,
             0.99999, 1.0 - 1e-12, 1.0]
    return edges + rng.uniform(0, 1, 2000).tolist() + (1 - rng.exponential(1e-3, 500)).clip(0, 1).tolist()


def test_printed_probability_is_three_decimals_never_certain() -> None:
    for p in _grid():
        for value in (p, float(displayed_probability(p))):  # the raw score and the capped one print the same way
            text = format_probability(value)
            assert PRINTED.fullmatch(text), (p, text)
            assert not CERTAIN.search(text), (p, text)
        assert format_probability(p) == format_probability(float(displayed_probability(p))), p


def test_printed_probability_ends_and_order() -> None:
    assert format_probability(1.0) == format_probability(1 - PROB_FLOOR) == ABOVE_CAP == "> 0.999"
    assert format_probability(0.0) == format_probability(PROB_FLOOR) == BELOW_FLOOR == "< 0.001"
    assert format_probability(0.9986) == "0.999" and format_probability(0.0012) == "0.001"
    assert format_probability(0.876) == "0.876" and format_probability(0.5) == "0.500"
    assert format_probability(None) == "-" and format_probability(float("nan")) == "-"
    order = [BELOW_FLOOR] + [f"{i / 1000:.3f}" for i in range(1, 1000)] + [ABOVE_CAP]
    ranks = [order.index(format_probability(p)) for p in sorted(_grid())]
    assert ranks == sorted(ranks)  # printing never reverses two scores
    assert [reading(p) for p in (0.0, 0.0012, 0.5, 0.9986, 0.9994, 1.0)] == [0.0, 0.001, 0.5, 0.999, 1.0, 1.0]


@pytest.mark.parametrize(("t", "text"), [(SHIPPED_AI_LINE, "0.9995"), (0.0917, "0.0917"), (0.99999, "0.99999"),
                                         (0.999999, "0.999999"), (3e-6, "0.000003"), (0.5, "0.5000")])
def test_lines_print_precisely_and_never_as_certain(t: float, text: str) -> None:
    assert format_line(t) == text and not CERTAIN.search(format_line(t))


def test_uncertain_at_the_cap_carries_the_ai_line() -> None:
    """The issue's row: shown "> 0.999", verdict uncertain, because the `ai` line sits at 0.9995."""
    score = Score(0.999, UNCERTAIN, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917)
    assert format_probability(score.prob_ai) == "> 0.999"
    assert score.warnings == [AI_LINE_NOTE + "0.9995"] == ["ai_line_above_shown_probability_0.9995"]
    fields = {k: v for k, v in score.to_dict().items() if k != "max_segment_prob_ai"}
    assert Score(**fields).warnings == score.warnings  # a round trip adds no duplicate
    for label in (AI, HUMAN):  # a decided verdict never needs the note: rounding keeps its order with the lines
        assert Score(0.999, label, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917).warnings == []
    assert Score(0.9986, UNCERTAIN, threshold_ai=SHIPPED_AI_LINE).warnings == []  # "0.999" is below "0.9995"
    assert Score(None, INSUFFICIENT_TEXT, threshold_ai=SHIPPED_AI_LINE).warnings == []


def test_notes_where_rounding_hides_a_line() -> None:
    assert line_notes(0.97315, UNCERTAIN, 0.97318, 0.2) == [AI_LINE_NOTE + "0.9732"]  # both print as 0.973
    assert line_notes(0.97305, UNCERTAIN, 0.97358, 0.2) == []  # 0.973 against 0.974: the line is visibly higher
    assert line_notes(0.05034, UNCERTAIN, 0.9, 0.05031) == [HUMAN_LINE_NOTE + "0.0503"]
    assert line_notes(0.999, UNCERTAIN, None, None) == []
    assert verdict_note([AI_LINE_NOTE + "0.9995", "unicode_normalized"]) == "below the ai line 0.9995"
    assert verdict_note([HUMAN_LINE_NOTE + "0.0503"]) == "above the human line 0.0503"
    assert verdict_note(None) == verdict_note([]) == ""


def _read(p: float) -> float:
    """What a reader takes the printed text for, parsed from the text itself (independent of ``reading``)."""
    text = format_probability(p)
    return {ABOVE_CAP: 1.0, BELOW_FLOOR: 0.0}[text] if text in (ABOVE_CAP, BELOW_FLOOR) else float(text)


def test_printed_numbers_never_contradict_the_verdict() -> None:
    """Through the detector's own verdict rule and cap, over random scores, lines, lengths and priors' shifts:
    an `ai` row never prints below its line, a `human` row never above its line, and an `uncertain` row that
    prints at or beyond a line says which line it is under."""
    from detector.detector import decide

    rng = random.Random(0)
    for _ in range(20_000):
        t_ai = rng.choice([SHIPPED_AI_LINE, 0.9985, 0.999, 0.99999, rng.uniform(0.5, 1.0)])
        t_human = rng.choice([0.0917, 0.001, 0.0005, rng.uniform(0.0, 0.5)])
        p = rng.choice([rng.uniform(0, 1), t_ai + rng.uniform(-1e-3, 1e-3), t_human + rng.uniform(-1e-3, 1e-3),
                        1 - rng.expovariate(1e3)])
        p = min(max(p, 0.0), 1.0)
        label = decide(p, 200, 128, t_ai, t_human)
        score = Score(float(displayed_probability(p)), label, threshold_ai=t_ai, threshold_human=t_human)
        shown = _read(score.prob_ai)
        if label == AI:
            assert shown >= _read(t_ai), (p, t_ai)
        elif label == HUMAN:
            assert shown <= _read(t_human), (p, t_human)
        else:
            if shown >= _read(t_ai):
                assert AI_LINE_NOTE + format_line(t_ai) in score.warnings, (p, t_ai)
            if shown <= _read(t_human):
                assert HUMAN_LINE_NOTE + format_line(t_human) in score.warnings, (p, t_human)


def test_batch_row_and_table_show_the_rule() -> None:
    doc = text_document("ai_reading_habits.txt", "An essay.")
    scores = [Score(0.999, UNCERTAIN, n_tokens=256, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917),
              Score(0.999, AI, n_tokens=256, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917),
              Score(0.001, HUMAN, n_tokens=256, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917),
              Score(0.6627, UNCERTAIN, n_tokens=221, threshold_ai=SHIPPED_AI_LINE, threshold_human=0.0917)]
    rows = [batch.score_row(doc, s, []) for s in scores]
    assert rows[0]["prob_ai"] == 0.999 and isinstance(rows[0]["prob_ai"], float)  # files keep the number
    assert AI_LINE_NOTE + "0.9995" in rows[0]["warnings"]
    table = batch.format_table(rows).splitlines()
    assert table[0].split() == ["path", "label", "prob_ai", "n_tokens", "status", "note"]
    assert "uncertain  > 0.999" in table[1] and table[1].endswith("below the ai line 0.9995")
    assert "ai         > 0.999" in table[2] and "line" not in table[2]
    assert "< 0.001" in table[3] and "0.663" in table[4]
    assert not any(CERTAIN.search(line) for line in table)
    assert "note" not in batch.format_table(rows[1:]).splitlines()[0]  # no note column when no row needs one
    page = explain.upload_table(rows)
    assert [r["prob_ai"] for r in page] == ["> 0.999", "> 0.999", "< 0.001", "0.663"]
    assert "below the 'ai' line of 0.9995" in page[0]["notes"]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_shipped_detector_table_on_the_samples(smollm2_fp32, precision: str, tmp_path: Path) -> None:
    """The samples through the shipped detector and the CLI's table, at both precisions: no printed certainty,
    and every `uncertain` row printed at the cap names the `ai` line (which rows those are depends on precision).
    """
    from detector import Detector

    det = Detector.load(dtype=precision)
    with open(REPO / "data" / "samples" / "labels.csv") as fh:
        files = sorted(REPO / "data" / "samples" / row["file"] for row in csv.DictReader(fh)
                       if "/" not in row["file"])  # the English samples: smollm2-en
    summary = batch.score_paths(det, files, tmp_path / "rows.jsonl", progress=False)
    table = batch.format_table(summary.rows)
    assert not any(CERTAIN.search(line) for line in table.splitlines()[1:]), table
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == len(files) and all(isinstance(r["prob_ai"], float) for r in rows)
    for row, line in zip(summary.rows, table.splitlines()[1:]):
        assert PRINTED.search(line), line
        if row["label"] == UNCERTAIN and format_probability(row["prob_ai"]) == ABOVE_CAP:
            assert any(w.startswith(AI_LINE_NOTE) for w in row["warnings"]), row
            assert line.endswith(f"below the ai line {format_line(det.threshold_ai)}"), table
