"""Web page: paste a text (or upload files) and get a calibrated P(AI) with plain-language explanations.

Run with ``streamlit run app.py``. The bundle comes from ``$DETECTOR_BUNDLE`` (a name under
detector/bundles/ or a folder), else the shipped default. This file is layout only: every
wording, colour and computation lives in ``detector.explain`` so it can be unit-tested.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from detector import explain
from detector.score import Score

UPLOAD_TYPES = ["txt", "md", "docx", "pdf", "html", "htm"]


@st.cache_resource(show_spinner="Loading the language model and detector bundle…")
def load_detector(bundle: str | None) -> Any:
    """Load the detector once per server (per bundle): the model load is the slow step, scoring is not."""
    from detector import load

    return load(bundle=bundle)


def show_score(det: Any, score: Score) -> None:
    """Verdict, explanation, warnings, highlighting and details for one scored text."""
    det = det.detector_for_bundle(score.bundle)  # the bundle that scored this text (Chinese: gemma3-zh)
    v = explain.verdict(score, det.target_fpr)
    st.subheader(f"Verdict: {v.title}")
    if v.prob_text is not None:
        left, right = st.columns(2)
        left.metric("P(AI)", v.prob_text)
        right.metric("Verdict label", v.label)
    else:
        st.metric("Verdict label", v.label)
    getattr(st, v.kind)("\n\n".join(v.explanation))
    for message in explain.warning_messages(score):
        st.warning(message, icon="⚠️")
    if v.abstained:
        return

    st.markdown("#### Sentence by sentence")
    st.caption("Each sentence is shaded by its own P(AI); hover over it for the number. Sentence scores are "
               "noisier than the score of the whole text.")
    st.html(explain.highlight_legend_html() + explain.highlight_html(score.text, score.segments))
    if st.toggle("Show token view (GLTR: how predictable each word was to the model)", key="show_tokens"):
        st.caption("Each token is coloured by its rank among the model's guesses; hover for rank and probability. "
                   "AI text tends to be mostly green.")
        st.html(explain.token_legend_html() + explain.token_html(score.text, score.tokens or []))

    with st.expander("Details: features and model"):
        st.markdown("Main features of this text next to their typical range (10th–90th percentile, and median) "
                    "among human and AI texts in calibration:")
        st.table(explain.feature_rows(score.features, det.bundle.manifest.get("feature_ranges", {})),
                 hide_index=True)
        st.markdown("Detector in use:")
        info = explain.bundle_info(det.bundle.manifest, getattr(det, "precision", None))
        st.table([{"setting": k, "value": v} for k, v in info.items()], hide_index=True)


def text_tab(det: Any) -> None:
    """Paste a text, press Score."""
    languages = " or ".join(explain.LANGUAGE_NAMES.get(lang, lang) for lang in det.bundles)
    text = st.text_area("Text to check", height=260, key="text",
                        placeholder=f"Paste an essay, an article or a few paragraphs ({languages}).")
    if st.button("Score", type="primary", key="score"):
        with st.spinner("Scoring…"):
            try:
                st.session_state["result"] = (text, det.score(text, return_tokens=True))
            except Exception as exc:  # noqa: BLE001 - shown on the page, never as a traceback
                st.session_state.pop("result", None)
                st.error(f"Scoring failed: {type(exc).__name__}: {exc}")
    result = st.session_state.get("result")
    if result is None:
        return
    scored_text, score = result
    if scored_text != text:
        st.info("The text was edited after scoring; the result below is for the previous text. Press Score again.")
    show_score(det, score)


def files_tab(det: Any) -> None:
    """Upload files, score them with the batch code, show a table and offer the CSV."""
    files = st.file_uploader("Files to check (.txt, .md, .docx, .pdf, .html)", type=UPLOAD_TYPES,
                             accept_multiple_files=True, key="uploads")
    if st.button("Score files", key="score_files", disabled=not files):
        with st.spinner(f"Scoring {len(files)} file(s)…"):
            st.session_state["uploads_result"] = explain.score_uploads(det, [(f.name, f.getvalue()) for f in files])
    result = st.session_state.get("uploads_result")
    if result is None:
        return
    # prob_ai comes printed by the one display rule (detector.display.format_probability: "0.973", "> 0.999"),
    # as in the CLI table, so the page never shows a number the verdict contradicts
    st.dataframe(explain.upload_table(result.rows), hide_index=True, placeholder="–", column_config={
        "n_tokens": st.column_config.NumberColumn(format="%d")})
    st.caption("prob_ai is empty where the detector abstains (too short, other language) or the file could not "
               "be read; see the label, status and error columns.")
    st.download_button("Download results (CSV)", result.csv, file_name="ai-detector-results.csv", mime="text/csv",
                       key="download_csv")


def main() -> None:
    """The page."""
    st.set_page_config(page_title="AI text detector", page_icon="🔎")
    st.title("AI-generated text detector")
    bundle = os.environ.get(explain.BUNDLE_ENV) or None
    try:
        det = load_detector(bundle)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes a readable message
        st.error(explain.load_error_message(bundle, exc))
        st.stop()
    st.caption(f"Languages: {explain.languages_text(det.bundles)}; each text is scored by the bundle for its "
               "language. A score is evidence, not proof: never use it alone to accuse anyone.")
    paste, upload = st.tabs(["Paste text", "Upload files"])
    with paste:
        text_tab(det)
    with upload:
        files_tab(det)


main()
