"""The web page (app.py, driven headless by Streamlit's AppTest on a real tiny bundle) and detector.explain.

Why: the page is where people read the verdict; it must show a calibrated number with its
meaning, never a number for an abstention, and never a traceback when the bundle is missing.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from detector import explain  # noqa: E402
from detector.score import (  # noqa: E402
    AI,
    ERROR,
    HUMAN,
    INSUFFICIENT_TEXT,
    UNCERTAIN,
    UNSUPPORTED_LANGUAGE,
    Score,
    Segment,
    TokenView,
)

APP = TESTS_DIR.parent / "app.py"
TIMEOUT = 180  # seconds per AppTest run: the first one loads the model on a busy 2-core machine
# Anything that would present a probability: the metric, "P(AI) = 0.42", "P(AI) below 0.01".
PROB_RE = re.compile(r"P\(AI\)\s*(=|below|above|≥)")


@pytest.fixture(scope="module")
def tiny_bundle(tiny_bundle_dir: Path) -> Path:
    """The session's tiny bundle (conftest), trained once and shared with the other API tests."""
    return tiny_bundle_dir


@pytest.fixture
def app(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DETECTOR_BUNDLE", str(tiny_bundle))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> list[str]:
    """Every text the page shows (markdown, callouts, headers, metrics, captions)."""
    out: list[str] = []
    for kind in ("markdown", "info", "warning", "error", "success", "subheader", "caption", "title"):
        out += [str(e.value) for e in at.get(kind)]
    out += [f"{m.label} {m.value}" for m in at.metric]
    return out


def _score(at, text: str):
    at.text_area(key="text").input(text)
    at.button(key="score").click().run()
    assert not at.exception, at.exception
    return at


# --- the page ----------------------------------------------------------------------------


def test_essay_shows_verdict_probability_and_explanation(app, english_paragraph: str) -> None:
    at = _score(app, english_paragraph + "\n\n" + english_paragraph)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Verdict label"] in (AI, HUMAN, UNCERTAIN)
    assert re.fullmatch(r"< 0\.001|> 0\.999|0\.\d\d\d", metrics["P(AI)"]), metrics  # the one display rule
    assert any(s.startswith("Verdict: ") for s in (e.value for e in at.subheader))
    texts = " ".join(_texts(at))
    assert "calibrated probability" in texts and "held-out tests" in texts
    assert "about 1% of human-written texts in calibration" in texts  # the tiny bundle's target FPR
    assert "only the first 64 tokens were scored" in texts  # the tiny bundle truncates at 64 tokens
    bodies = [h.proto.body for h in at.html]
    assert any("sentence P(AI) = " in b and "rgba(" in b for b in bodies)  # shaded sentences
    assert not any("rank " in b for b in bodies)  # token view is off until toggled
    details = at.table[0].value
    assert {"perplexity", "classifier_logit", "fast_detectgpt"} <= set(details["feature"])
    assert details["typical human (p10–p90)"].str.contains("median").all()
    settings = {row["setting"]: row["value"] for row in at.table[1].value.to_dict("records")}
    assert settings["bundle"] == "tiny"
    assert "Languages: English (tiny)" in texts  # every language scored, with the bundle for it
    assert settings["model precision"].split()[0] in ("float32", "bfloat16")  # the loaded detector's precision


def test_token_view_toggle(app, english_paragraph: str) -> None:
    at = _score(app, english_paragraph)
    at.toggle(key="show_tokens").set_value(True).run()
    assert not at.exception, at.exception
    token_views = [h.proto.body for h in at.html if 'title="rank ' in h.proto.body]
    assert token_views, "token view not rendered"
    assert any(color in token_views[0] for _, _, color in explain.RANK_BUCKETS)
    assert "not scored" in token_views[0]  # the paragraph is longer than the tiny bundle's 64 tokens


def test_short_text_abstains_without_a_number(app) -> None:
    at = _score(app, "Far too short to judge.")
    assert [m.label for m in at.metric] == ["Verdict label"]
    assert at.metric[0].value == INSUFFICIENT_TEXT
    warnings = " ".join(str(w.value) for w in at.warning)
    assert "No verdict" in warnings and "too short" in warnings
    assert not any(PROB_RE.search(t) for t in _texts(at)), _texts(at)
    assert not at.html  # no highlighting for an abstention


def test_other_language_abstains(app) -> None:
    german = ("Der Hund läuft jeden Morgen schnell über die große Wiese, und die Kinder spielen danach im Garten "
              "mit dem roten Ball, bis ihre Mutter sie zum Frühstück ruft. ") * 2
    at = _score(app, german)
    assert at.metric[0].value == UNSUPPORTED_LANGUAGE
    assert "German (de)" in " ".join(str(w.value) for w in at.warning)
    assert not any(PROB_RE.search(t) for t in _texts(at))


def test_upload_uses_batch_code_and_offers_csv(app, english_paragraph: str) -> None:
    at = app
    at.file_uploader(key="uploads").set_value([
        ("essay.txt", english_paragraph.encode(), "text/plain"),
        ("tiny.md", b"Too short.", "text/markdown"),
        ("broken.pdf", b"this is not a pdf", "application/pdf"),
    ]).run()
    at.button(key="score_files").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table.columns) == list(explain.UPLOAD_TABLE_COLUMNS)
    rows = {r["name"]: r for r in table.to_dict("records")}
    assert rows["essay.txt"]["label"] in (AI, HUMAN, UNCERTAIN) and rows["essay.txt"]["status"] == "ok"
    assert rows["tiny.md"]["label"] == INSUFFICIENT_TEXT
    assert rows["broken.pdf"]["label"] == ERROR and rows["broken.pdf"]["status"] == "corrupt_document"
    assert rows["broken.pdf"]["error"].startswith("broken.pdf:")  # the temp path is never shown
    assert at.get("download_button"), "no CSV download offered"


def test_missing_bundle_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DETECTOR_BUNDLE", str(tmp_path / "no-such-bundle"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    message = " ".join(str(e.value) for e in at.error)
    assert "could not be loaded" in message and "no-such-bundle" in message and "DETECTOR_BUNDLE" in message
    assert not at.text_area  # the page stops: no input to type into a broken detector


# --- detector.explain --------------------------------------------------------------------


@pytest.mark.parametrize(("code", "expected"), [
    ("too_short_for_a_verdict_12_of_50_tokens", "only 12 tokens, fewer than the 50 needed"),
    ("scored_first_512_tokens_only", "only the first 512 tokens were scored"),
    ("text_truncated_to_100000_chars", "only the first 100000 characters"),
    ("file_truncated_to_200000_chars", "only the first 200000 characters"),
    ("unicode_normalized", "normalised"),
    ("removed_3_zero_width_chars", "3 invisible (zero-width) character(s) were removed"),
    ("replaced_2_control_chars", "2 control character(s)"),
    ("replaced_5_homoglyphs", "5 look-alike letter(s)"),
    ("replaced_4_undecodable_bytes", "4 unreadable byte(s)"),
    ("decoded_as_cp1252", "read as cp1252"),
    ("decoded_as_utf-16_without_bom", "read as utf-16."),
    ("ai_line_above_shown_probability_0.9995", "below the 'ai' line of 0.9995"),
    ("human_line_below_shown_probability_0.0917", "above the 'human' line of 0.0917"),
    ("some_new_warning", "Some new warning."),
])
def test_warning_message(code: str, expected: str) -> None:
    message = explain.warning_message(code)
    assert expected in message
    assert "_" not in message.replace("utf-16", "")


def test_warning_messages_skip_length_warning_covered_by_abstention() -> None:
    short = Score(None, INSUFFICIENT_TEXT, warnings=["too_short_for_a_verdict_3_of_16_tokens", "replaced_1_homoglyphs"])
    assert explain.warning_messages(short) == [explain.warning_message("replaced_1_homoglyphs")]
    assert "3 tokens" in explain.abstention_reason(short) and "16" in explain.abstention_reason(short)
    scored = Score(0.5, UNCERTAIN, warnings=["scored_first_512_tokens_only", "scored_first_512_tokens_only"])
    assert len(explain.warning_messages(scored)) == 1


@pytest.mark.parametrize("label", [INSUFFICIENT_TEXT, UNSUPPORTED_LANGUAGE, ERROR])
def test_verdict_never_shows_a_number_for_abstentions(label: str) -> None:
    score = Score(None, label, lang="fr", error="boom", threshold_ai=0.9)
    v = explain.verdict(score, 0.01)
    assert v.abstained and v.prob_text is None
    assert not any(PROB_RE.search(line) for line in v.explanation)
    assert v.explanation[0].startswith("No verdict.")
    if label == UNSUPPORTED_LANGUAGE:
        assert "French (fr)" in v.explanation[0]
    if label == ERROR:
        assert "boom" in v.explanation[0] and v.kind == "error"


def test_verdict_explains_number_threshold_and_uncertain_zone() -> None:
    ai = explain.verdict(Score(0.973, AI, threshold_ai=0.95, threshold_human=0.2), 0.01)
    assert ai.prob_text == "0.973" and not ai.abstained
    assert "about 97% were AI-written" in ai.explanation[0]
    assert "only given at P(AI) ≥ 0.950" in ai.explanation[-1] and "about 1% of human-written" in ai.explanation[-1]
    unsure = explain.verdict(Score(0.6, UNCERTAIN, threshold_ai=0.95, threshold_human=0.2), 0.005)
    assert unsure.prob_text == "0.600" and unsure.kind == "warning"
    assert any("uncertain zone (between 0.200 and 0.950)" in line for line in unsure.explanation)
    assert explain.PLAIN_WRITING_NOTE in unsure.explanation  # a high undecided score is no evidence
    assert "about 0.5% of human-written" in unsure.explanation[-1]
    low = explain.verdict(Score(0.0001, HUMAN, threshold_ai=0.999), 0.01)
    assert low.prob_text == "< 0.001" and "below 0.001" in low.explanation[0] and "0.999" in low.explanation[-1]
    near = explain.verdict(Score(0.9986, UNCERTAIN, threshold_ai=0.9995, threshold_human=0.09), 0.01)
    assert near.prob_text == "0.999" and "about 99.9% were AI-written" in near.explanation[0]  # never "100%"
    assert any("between 0.090 and 0.9995" in line for line in near.explanation)


def test_page_explains_an_uncertain_score_shown_at_the_cap() -> None:
    """The page's side of the display rule: "> 0.999" with `uncertain` names the `ai` line that is higher still."""
    score = Score(0.999, UNCERTAIN, threshold_ai=0.9994514545313316, threshold_human=0.0917)
    v = explain.verdict(score, 0.01)
    assert v.prob_text == "> 0.999" and "P(AI) above 0.999" in v.explanation[0]
    assert any("between 0.092 and 0.9995" in line for line in v.explanation)
    messages = explain.warning_messages(score)
    assert any("below the 'ai' line of 0.9995" in m for m in messages), messages
    assert not any("1.00" in line or "100%" in line for line in [v.prob_text, *v.explanation, *messages])
    decided = Score(0.999, AI, threshold_ai=0.9994514545313316, threshold_human=0.0917)
    assert explain.warning_messages(decided) == []  # an `ai` verdict at the cap needs no note


def test_highlight_html_escapes_and_shades() -> None:
    text = 'First <script>alert("x")</script> & more. Second one.'
    cut = text.index("Second")
    html_out = explain.highlight_html(text, [Segment(0, cut - 1, 0.9), Segment(cut, len(text), None)])
    assert "<script>" not in html_out and "&lt;script&gt;" in html_out and "&amp; more" in html_out
    assert "&quot;x&quot;" in html_out
    assert html_out.count("background-color: rgba(") == 1  # the None segment is unshaded
    assert 'title="sentence P(AI) = 0.900"' in html_out and 'title="no sentence score"' in html_out
    assert explain.segment_color(None) is None
    assert explain.segment_color(0.0) == "rgba(230, 80, 40, 0.00)"
    assert explain.segment_color(1.0) == f"rgba(230, 80, 40, {explain.HIGHLIGHT_MAX_ALPHA:.2f})"


@pytest.mark.parametrize(("rank", "color"), [
    (1, "#ADFF80"), (10, "#ADFF80"), (11, "#FFEA80"), (100, "#FFEA80"),
    (101, "#FF9280"), (1000, "#FF9280"), (1001, "#E5B0FF"), (50_000, "#E5B0FF"),
])
def test_rank_bucket_colours(rank: int, color: str) -> None:
    assert explain.rank_bucket(rank)[1] == color


def test_token_html_escapes_and_gives_rank_tooltips() -> None:
    text = "a<b & c tail"
    tokens = [TokenView(0, 1, 1, 0.5), TokenView(1, 3, 50, 0.01), TokenView(3, 5, 5000, 0.0001)]
    out = explain.token_html(text, tokens)
    assert "&lt;b" in out and "<b" not in out.replace("<br", "")
    assert 'title="rank 1 (top 10), p = 0.5"' in out and 'title="rank 5000 (beyond 1000), p = 0.0001"' in out
    assert 'title="not scored"' in out and "tail" in out


def test_feature_rows_and_bundle_info() -> None:
    ranges = {"perplexity": {"human": [20.0, 35.5, 60.0], "ai": [5.0, 9.25, 15.0]}}
    rows = explain.feature_rows({"perplexity": 12.3456, "n_tokens": 300.0}, ranges)
    by_name = {r["feature"]: r for r in rows}
    assert by_name["perplexity"]["this text"] == "12.35"
    assert by_name["perplexity"]["typical human (p10–p90)"] == "20 – 60 (median 35.5)"
    assert by_name["perplexity"]["typical AI (p10–p90)"] == "5 – 15 (median 9.25)"
    assert by_name["n_tokens"]["this text"] == "300" and by_name["n_tokens"]["typical AI (p10–p90)"] == "–"
    assert explain.languages_text({"en": "smollm2-en", "zh": "gemma3-zh"}) == \
        "English (smollm2-en), Chinese (gemma3-zh)"
    assert explain.languages_text({"xx": "x"}) == "xx (x)"
    info = explain.bundle_info({"name": "b", "backbone": {"identity": "m@1", "spec": "m"}, "languages": ["en"],
                                "thresholds": {"ai": 0.97, "human": 0.1, "target_fpr": 0.01, "min_tokens": 50}})
    assert info["bundle"] == "b" and info["backbone"] == "m@1" and info["target false-positive rate"] == "1%"
    assert "model precision" not in info
    info = explain.bundle_info({"name": "b"}, precision="bfloat16")
    assert info["model precision"].startswith("bfloat16") and "DETECTOR_DTYPE=float32" in info["model precision"]


def test_load_error_message_names_the_bundle_and_the_fix() -> None:
    msg = explain.load_error_message(None, FileNotFoundError("gone"))
    assert "default bundle" in msg and "FileNotFoundError: gone" in msg and explain.BUNDLE_ENV in msg


class _FakeDetector:
    """Stands in for Detector in the batch code: a fixed score per text length."""

    feature_names = ["perplexity"]

    def score_many(self, texts: list[str], batch_size: int = 8) -> list[Score]:
        return [Score(0.8, AI, n_tokens=len(t.split()), features={"perplexity": 3.0}) if len(t) > 20
                else Score(None, INSUFFICIENT_TEXT, n_tokens=1, warnings=["too_short_for_a_verdict_1_of_5_tokens"])
                for t in texts]


def test_score_uploads_goes_through_batch_and_keeps_uploaded_names() -> None:
    files = [("../../etc/essay.txt", b"A long enough text to be scored here."),
             ("essay.txt", b"Short."),  # same base name: must not overwrite the first
             (".hidden.md", b"Another text that is long enough to score."),
             ("empty.txt", b"")]
    result = explain.score_uploads(_FakeDetector(), files)
    rows = {r["path"]: r for r in result.rows}
    assert set(rows) == {name for name, _ in files}
    assert rows["../../etc/essay.txt"]["prob_ai"] == 0.8 and rows["essay.txt"]["label"] == INSUFFICIENT_TEXT
    assert rows[".hidden.md"]["label"] == AI
    assert rows["empty.txt"]["status"] == "empty" and rows["empty.txt"]["error"].startswith("empty.txt:")
    parsed = list(csv.DictReader(io.StringIO(result.csv)))
    assert parsed[0].keys() >= {"path", "status", "prob_ai", "label", "n_tokens", "error", "perplexity"}
    assert {r["path"] for r in parsed} == set(rows)
    table = explain.upload_table(result.rows)
    short = next(r for r in table if r["name"] == "essay.txt")
    assert short["prob_ai"] is None and "only 1 tokens" in short["notes"]
    assert next(r for r in table if r["name"] == ".hidden.md")["prob_ai"] == "0.800"  # printed by the one rule
