"""Plain-language explanations and HTML views of a ``Score``, for the web page (``app.py``).

Why a separate module: the page must stay a thin layout layer, and everything it says about
a score (verdict wording, what the number means, warnings, colours, escaping) is pure logic
that is unit-tested here without a browser or a Streamlit server.
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.display import (
    ABOVE_CAP,
    AI_LINE_NOTE,
    BELOW_FLOOR,
    HUMAN_LINE_NOTE,
    PROB_FLOOR,
    format_line,
    format_probability,
)
from detector.score import (
    ABSTAIN_LABELS,
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

# Environment variable naming the bundle the page uses (a name under detector/bundles/ or a folder).
BUNDLE_ENV = "DETECTOR_BUNDLE"
DTYPE_ENV = "DETECTOR_DTYPE"  # read by Detector.load (detector.lm.DTYPE_ENV); named here for the page's wording

# Plain titles of the machine labels (the label itself is shown too, so both can be searched for).
LABEL_TITLES = {
    AI: "Likely AI-written",
    HUMAN: "Likely human-written",
    UNCERTAIN: "Uncertain",
    INSUFFICIENT_TEXT: "Not enough text for a verdict",
    UNSUPPORTED_LANGUAGE: "Language not supported",
    ERROR: "Could not be scored",
}

# GLTR rank buckets and colours (Gehrmann et al., 2019): top-10 green, 11-100 yellow, 101-1000 red, beyond purple.
RANK_BUCKETS: tuple[tuple[int | None, str, str], ...] = (
    (10, "top 10", "#ADFF80"),
    (100, "top 100", "#FFEA80"),
    (1000, "top 1000", "#FF9280"),
    (None, "beyond 1000", "#E5B0FF"),
)

# Features shown in the details table, with a short reading aid; the order is the table's.
MAIN_FEATURES: tuple[tuple[str, str], ...] = (
    ("classifier_logit", "fine-tuned classifier score (higher = more AI-like)"),
    ("perplexity", "how surprising the text is to the language model (AI text tends to be lower)"),
    ("fast_detectgpt", "Fast-DetectGPT curvature: the text vs. what the model would write (higher = more AI-like)"),
    ("burstiness_mean_ppl", "mean sentence perplexity"),
    ("burstiness_std_ppl", "spread of sentence perplexity (humans vary more from sentence to sentence)"),
    ("mean_log_rank", "mean log-rank of the words actually written (lower = more predictable)"),
    ("gltr_top10", "share of tokens among the model's top-10 guesses (higher = more predictable)"),
    ("mean_entropy", "how spread out the model's predictions are"),
    ("n_tokens", "number of tokens scored"),
)

# Shading of sentences: an orange-red whose opacity grows with the sentence's P(AI).
HIGHLIGHT_RGB = (230, 80, 40)
HIGHLIGHT_MAX_ALPHA = 0.6

# A few language names for the "unsupported language" message; other codes are shown as they are.
LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "ru": "Russian", "uk": "Ukrainian", "zh": "Chinese", "ja": "Japanese",
    "ko": "Korean", "ar": "Arabic", "tr": "Turkish", "sv": "Swedish", "da": "Danish", "no": "Norwegian",
    "fi": "Finnish", "cs": "Czech", "el": "Greek", "hi": "Hindi", "la": "Latin",
}

# Columns of the upload results table on the page (the CSV download keeps every batch column).
UPLOAD_TABLE_COLUMNS = ("name", "label", "prob_ai", "n_tokens", "status", "error", "notes")


def load_error_message(bundle: str | None, exc: BaseException) -> str:
    """What the page says when the detector cannot be loaded (instead of a traceback)."""
    which = f"bundle {bundle!r} (from ${BUNDLE_ENV})" if bundle else "the default bundle"
    return (f"The detector could not be loaded from {which}: {type(exc).__name__}: {exc}\n\n"
            f"Set the environment variable {BUNDLE_ENV} to a bundle name (under detector/bundles/) or a bundle "
            "folder, then restart the page.")


def language_name(code: str | None) -> str:
    """Readable name of an ISO 639-1 code (the code itself if unknown)."""
    if not code:
        return "an unidentified language"
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else f"'{code}'"


def format_prob(p: float) -> str:
    """P(AI) as the page prints it: the one rule of ``detector.display.format_probability`` (three decimals,
    "> 0.999" / "< 0.001" at the cap), the same as the batch table, so no page ever says 1.00 next to a verdict
    that is not sure."""
    return format_probability(p)


def format_threshold(t: float) -> str:
    """A verdict threshold: three decimals like the probability beside it (fewer could print a line below a
    shown P(AI) that did not reach it), and four or more beyond [0.001, 0.999], where the `ai` line can sit past
    the displayed probability's cap (0.9995, not 0.999) and must not read 1.000 (``detector.display.format_line``).
    """
    if t > 1 - PROB_FLOOR or t < PROB_FLOOR:
        return format_line(t)
    return f"{t:.3f}"


def format_percent(share: float) -> str:
    """A share (0.01) as a percentage ("1%"), with one decimal only when it matters ("0.5%")."""
    pct = 100.0 * share
    return f"{pct:.0f}%" if pct >= 1 and abs(pct - round(pct)) < 0.05 else f"{pct:.1f}%"


def format_number(value: Any) -> str:
    """A feature value with 4 significant digits (integers as integers, missing as a dash)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, float)) and float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{float(value):.4g}"


# --- the verdict -------------------------------------------------------------------------


def probability_sentence(prob: float) -> str:
    """What a calibrated P(AI) means, in one sentence."""
    shown = format_prob(prob)
    if shown == BELOW_FLOOR:
        value, share = f"P(AI) below {PROB_FLOOR:.3f}", "almost none"
    elif shown == ABOVE_CAP:
        value, share = f"P(AI) above {1 - PROB_FLOOR:.3f}", "nearly all"
    else:  # the shown number as a share; one decimal near the ends, so it never reads 0% or 100%
        pct = 100 * float(shown)
        value, share = f"P(AI) = {shown}", f"about {pct:.0f}%" if 1 <= pct <= 99 else f"about {pct:.1f}%"
    return (f"{value} is a calibrated probability: among texts that scored like this one in our held-out tests, "
            f"{share} were AI-written.")


def threshold_sentence(threshold_ai: float | None, target_fpr: float | None) -> str:
    """The false-positive rate behind the ``ai`` verdict, in one sentence."""
    if threshold_ai is None:
        return "The 'AI' verdict threshold is not known for this result."
    level = format_threshold(threshold_ai)
    rate = format_percent(target_fpr) if target_fpr is not None else "a small share"
    return (f"The 'AI' verdict is only given at P(AI) ≥ {level}, a level that about {rate} of human-written "
            "texts in calibration reached (so about that share of human texts would be wrongly called AI).")


def abstention_reason(score: Score) -> str:
    """Why the detector gives no probability for this text (label in ABSTAIN_LABELS)."""
    if score.label == INSUFFICIENT_TEXT:
        counts = _too_short_counts(score.warnings)
        if counts is not None:
            have, need = counts
            return (f"The text is too short: {have} tokens were scored, and at least {need} are needed for a "
                    "reliable verdict. Paste a longer passage (a paragraph or more).")
        if "empty_text" in score.warnings:
            return "The text is empty."
        return "The text is too short for a reliable verdict. Paste a longer passage (a paragraph or more)."
    if score.label == UNSUPPORTED_LANGUAGE:
        return (f"The text appears to be in {language_name(score.lang)}, a language this detector was not "
                "trained on; its scores would be meaningless, so none is given.")
    return f"The text could not be scored: {score.error or 'unknown error'}."


@dataclass
class Verdict:
    """Everything the page says about one score; ``prob_text`` is None when the detector abstains."""

    label: str
    title: str
    prob_text: str | None
    abstained: bool
    explanation: list[str] = field(default_factory=list)
    kind: str = "info"  # Streamlit callout to use: info / success / warning / error


# From reports/writer_bias.json (training/writer_bias.py; tests/test_writer_bias.py): non-native writers' essays
# score high without any AI. An undecided high number is no evidence.
PLAIN_WRITING_NOTE = ("Plain, predictable writing scores high here without any AI: essays by non-native English "
                      "writers had a median of 0.90 in our test, and none reached the 'ai' line.")


def verdict(score: Score, target_fpr: float | None = None) -> Verdict:
    """The verdict shown on the page; never a number for an abstention, always the reason instead."""
    title = LABEL_TITLES.get(score.label, score.label)
    if score.label in ABSTAIN_LABELS or score.prob_ai is None:
        kind = "error" if score.label == ERROR else "warning"
        return Verdict(score.label, title, None, True, [f"No verdict. {abstention_reason(score)}"], kind)
    lines = [probability_sentence(score.prob_ai)]
    if score.label == UNCERTAIN:
        low = format_threshold(score.threshold_human) if score.threshold_human is not None else "?"
        high = format_threshold(score.threshold_ai) if score.threshold_ai is not None else "?"
        lines.append(f"This score is in the uncertain zone (between {low} and {high}): the evidence is not strong "
                     "enough either way, so treat the text as undecided.")
        lines.append(PLAIN_WRITING_NOTE)
        kind = "warning"
    else:
        kind = "info"
    lines.append(threshold_sentence(score.threshold_ai, target_fpr))
    return Verdict(score.label, title, format_prob(score.prob_ai), False, lines, kind)


# --- warnings ----------------------------------------------------------------------------

_WARNING_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), m) for p, m in (
    (r"^too_short_for_a_verdict_(\d+)_of_(\d+)_tokens$",
     "Short text: only {0} tokens, fewer than the {1} needed for a verdict."),
    (r"^scored_first_(\d+)_tokens_only$",
     "Long text: only the first {0} tokens were scored; the rest of the text did not affect the result."),
    (r"^text_truncated_to_(\d+)_chars$",
     "Very long text: only the first {0} characters were read."),
    (r"^file_truncated_to_(\d+)_chars$",
     "Very long file: only the first {0} characters were read."),
    (r"^unicode_normalized$",
     "Some characters were normalised to their standard form (e.g. ligatures, full-width letters) before scoring."),
    (r"^removed_(\d+)_zero_width_chars$",
     "{0} invisible (zero-width) character(s) were removed before scoring; they can be an attempt to fool "
     "detectors."),
    (r"^replaced_(\d+)_control_chars$",
     "{0} control character(s) were replaced by spaces before scoring."),
    (r"^replaced_(\d+)_homoglyphs$",
     "{0} look-alike letter(s) from other alphabets (e.g. Cyrillic 'а' for Latin 'a') were replaced before "
     "scoring; they can be an attempt to fool detectors."),
    (r"^replaced_(\d+)_undecodable_bytes$",
     "{0} unreadable byte(s) in the file were replaced."),
    (r"^decoded_as_(.+?)(?:_without_bom)?$",
     "The file was not UTF-8; it was read as {0}."),
    (r"^empty_text$", "The text is empty."),
    (rf"^{AI_LINE_NOTE}([0-9.]+)$",
     "Shown rounded: this score is below the 'ai' line of {0} that an 'ai' verdict needs, though it prints as "
     "high as the line (the number is capped at 0.999 and rounded to three decimals), so it is uncertain."),
    (rf"^{HUMAN_LINE_NOTE}([0-9.]+)$",
     "Shown rounded: this score is above the 'human' line of {0} that a 'human' verdict needs, though it prints "
     "as low as the line (the number is rounded to three decimals), so it is uncertain."),
))


def _too_short_counts(warnings: Iterable[str]) -> tuple[int, int] | None:
    for w in warnings:
        m = _WARNING_PATTERNS[0][0].match(w)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def warning_message(code: str) -> str:
    """A readable sentence for one machine warning (unknown codes are shown with underscores as spaces)."""
    for pattern, message in _WARNING_PATTERNS:
        m = pattern.match(code)
        if m:
            return message.format(*m.groups())
    return code.replace("_", " ").capitalize() + "."


def warning_messages(score: Score) -> list[str]:
    """Readable warnings for a score shown next to its verdict.

    For an abstention on a short or empty text the length warning is left out: the abstention reason
    (``abstention_reason``, which also covers other languages) already says it.
    """
    codes = score.warnings
    if score.label == INSUFFICIENT_TEXT:
        codes = [w for w in codes if w != "empty_text" and not _WARNING_PATTERNS[0][0].match(w)]
    return list(dict.fromkeys(warning_message(w) for w in codes))


# --- highlighting ------------------------------------------------------------------------


def segment_color(prob: float | None) -> str | None:
    """CSS background for a sentence of this P(AI); None (unshaded) when it has no probability."""
    if prob is None or not math.isfinite(prob):
        return None
    alpha = HIGHLIGHT_MAX_ALPHA * min(max(prob, 0.0), 1.0)
    r, g, b = HIGHLIGHT_RGB
    return f"rgba({r}, {g}, {b}, {alpha:.2f})"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _block(inner: str) -> str:
    return ('<div style="white-space: pre-wrap; line-height: 1.7; font-size: 1rem; padding: 0.75rem; '
            f'border: 1px solid #ddd; border-radius: 0.5rem;">{inner}</div>')


def highlight_html(text: str, segments: Sequence[Segment]) -> str:
    """The text with each sentence shaded by its P(AI) (inline styles, all text escaped)."""
    parts: list[str] = []
    cursor = 0
    for seg in sorted(segments, key=lambda s: s.start):
        start, end = max(seg.start, cursor), min(seg.end, len(text))
        if end <= start:
            continue
        parts.append(_escape(text[cursor:start]))
        color = segment_color(seg.prob_ai)
        chunk = _escape(text[start:end])
        if color is None:
            parts.append(f'<span title="no sentence score">{chunk}</span>')
        else:
            parts.append(f'<span style="background-color: {color}; border-radius: 0.2rem;" '
                         f'title="sentence P(AI) = {format_prob(seg.prob_ai)}">{chunk}</span>')
        cursor = end
    parts.append(_escape(text[cursor:]))
    return _block("".join(parts))


def highlight_legend_html() -> str:
    """A small key for the sentence shading."""
    swatches = "".join(
        f'<span style="background-color: {segment_color(p)}; padding: 0 0.4rem; margin-right: 0.4rem; '
        f'border-radius: 0.2rem;">P(AI) {p:.1f}</span>' for p in (0.1, 0.5, 0.9))
    note = "unshaded: not scored (too short, or past the scored length)"
    return f'<div style="font-size: 0.85rem;">{swatches}<span>{note}</span></div>'


def rank_bucket(rank: int) -> tuple[str, str]:
    """(bucket name, colour) of a token rank (1 = the model's top guess), GLTR-style."""
    for limit, name, color in RANK_BUCKETS:
        if limit is None or rank <= limit:
            return name, color
    raise AssertionError("unreachable: the last bucket has no limit")


def token_html(text: str, tokens: Sequence[TokenView]) -> str:
    """GLTR-style view: each scored token coloured by its rank bucket, with rank and probability on hover."""
    parts: list[str] = []
    cursor = 0
    for tok in tokens:
        start, end = max(tok.start, cursor), min(tok.end, len(text))
        if end <= start:
            continue
        parts.append(_escape(text[cursor:start]))
        name, color = rank_bucket(tok.rank)
        parts.append(f'<span style="background-color: {color};" title="rank {tok.rank} ({name}), '
                     f'p = {tok.prob:.3g}">{_escape(text[start:end])}</span>')
        cursor = end
    if cursor < len(text):
        parts.append(f'<span style="color: #888;" title="not scored">{_escape(text[cursor:])}</span>')
    return _block("".join(parts))


def token_legend_html() -> str:
    """A key for the rank colours."""
    swatches = "".join(f'<span style="background-color: {color}; padding: 0 0.4rem; margin-right: 0.4rem;">'
                       f'{name}</span>' for _, name, color in RANK_BUCKETS)
    return (f'<div style="font-size: 0.85rem;">{swatches}<span style="color: #888;">grey: not scored</span>'
            "</div>")


# --- details -----------------------------------------------------------------------------


def _range_text(quantiles: Sequence[float] | None) -> str:
    if not quantiles or len(quantiles) != 3:
        return "–"
    p10, p50, p90 = quantiles
    return f"{format_number(p10)} – {format_number(p90)} (median {format_number(p50)})"


def feature_rows(features: Mapping[str, float], feature_ranges: Mapping[str, Mapping[str, Sequence[float]]],
                 names: Sequence[tuple[str, str]] = MAIN_FEATURES) -> list[dict[str, str]]:
    """Rows of the details table: each main feature's value next to typical human and AI ranges (p10–p90)."""
    rows = []
    for name, meaning in names:
        if name not in features and name not in feature_ranges:
            continue
        ranges = feature_ranges.get(name, {})
        rows.append({"feature": name, "this text": format_number(features.get(name)),
                     "typical human (p10–p90)": _range_text(ranges.get("human")),
                     "typical AI (p10–p90)": _range_text(ranges.get("ai")), "meaning": meaning})
    return rows


def precision_text(precision: str | None) -> str:
    """The model precision as the page shows it, with how to change it (the choice is made at load time)."""
    if not precision:
        return "?"
    other = "float32" if precision == "bfloat16" else "bfloat16"
    return f"{precision} (set {DTYPE_ENV}={other} before starting the page to change it)"


def languages_text(bundles: Mapping[str, str]) -> str:
    """'English (smollm2-en), Chinese (gemma3-zh)': every language the detector scores and the bundle for it."""
    return ", ".join(f"{LANGUAGE_NAMES.get(lang, lang)} ({name})" for lang, name in bundles.items()) or "?"


def bundle_info(manifest: Mapping[str, Any], precision: str | None = None) -> dict[str, str]:
    """The bundle facts shown on the page: name, backbone, languages, thresholds, and the model precision.

    ``precision`` is the loaded detector's (``Detector.precision``), not the bundle's: the same bundle
    runs in float32 or bfloat16 depending on the machine and $DETECTOR_DTYPE.
    """
    thresholds = manifest.get("thresholds", {})
    backbone = manifest.get("backbone", {})
    info = {
        "bundle": str(manifest.get("name", "?")),
        "backbone": str(backbone.get("identity", "?")),
        "backbone spec": str(backbone.get("spec", "?")),
        "languages": ", ".join(manifest.get("languages", [])) or "?",
        "AI threshold": format_threshold(float(thresholds["ai"])) if "ai" in thresholds else "?",
        "human threshold": format_threshold(float(thresholds["human"])) if "human" in thresholds else "?",
        "target false-positive rate": format_percent(float(thresholds["target_fpr"]))
        if "target_fpr" in thresholds else "?",
        "minimum tokens": str(thresholds.get("min_tokens", "?")),
    }
    if precision is not None:
        info["model precision"] = precision_text(precision)
    return info


# --- uploads -----------------------------------------------------------------------------


@dataclass
class UploadResult:
    """Batch results of uploaded files: rows for the page table and the full CSV for download."""

    rows: list[dict[str, Any]]
    csv: str


def _safe_name(name: str, index: int) -> str:
    base = os.path.basename(name.replace("\\", "/")) or f"upload{index}"
    return base.lstrip(".") or f"upload{index}"  # hidden names would be skipped by the batch reader


def score_uploads(det: Any, files: Sequence[tuple[str, bytes]], batch_size: int = 8) -> UploadResult:
    """Score uploaded (name, bytes) files through the same batch code as the CLI (``detector.batch``).

    Each file is written to its own temporary folder (uploaded names may repeat or contain paths),
    scored with ``score_paths`` into a temporary CSV, and reported under its uploaded name.
    """
    from detector.batch import BASE_COLUMNS, feature_columns, rows_to_csv, score_paths

    with tempfile.TemporaryDirectory(prefix="detector-upload-") as tmp:
        root = Path(tmp)
        paths: list[Path] = []
        names: dict[str, str] = {}
        for i, (name, data) in enumerate(files):
            folder = root / f"{i:04d}"
            folder.mkdir()
            path = folder / _safe_name(name, i)
            path.write_bytes(data)
            paths.append(path)
            names[os.path.abspath(path)] = name
        summary = score_paths(det, paths, root / "results.csv", batch_size=batch_size, progress=False)
    rows = []
    for row in summary.rows:
        tmp_path = str(row["path"])
        name = names.get(os.path.abspath(tmp_path), tmp_path)
        fixed = dict(row, path=name)
        if isinstance(fixed.get("error"), str):
            fixed["error"] = fixed["error"].replace(tmp_path, name)
        rows.append(fixed)
    columns = list(BASE_COLUMNS) + feature_columns(list(getattr(det, "feature_names", []) or []))
    return UploadResult(rows=rows, csv=rows_to_csv(rows, columns))


def upload_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The page's view of upload rows (UPLOAD_TABLE_COLUMNS): no prob_ai for abstentions, readable warnings.

    ``prob_ai`` is the printed text (``format_prob``: "0.973", "> 0.999"), like the CLI table; the CSV download
    keeps the number."""
    out = []
    for r in rows:
        prob = r.get("prob_ai") if r.get("label") not in ABSTAIN_LABELS else None
        language = [f"Other language: {language_name(r.get('lang'))}."] if r.get("label") == UNSUPPORTED_LANGUAGE \
            else []
        notes = language + [warning_message(w) for w in r.get("warnings") or []]
        out.append({"name": r.get("path"), "label": r.get("label"),
                    "prob_ai": format_prob(prob) if isinstance(prob, (int, float)) else None,
                    "n_tokens": r.get("n_tokens"), "status": r.get("status"), "error": r.get("error") or "",
                    "notes": " ".join(notes)})
    return out
