"""Does the ``ai`` verdict accuse non-native writers? The essay sets of Liang et al. (2023), scored as shipped.

``python -m training.writer_bias --data /path/to/ChatGPT-Detector-Bias``

Liang, Yuksekgonul, Mao, Wu and Zou, "GPT detectors are biased against non-native English writers"
(Patterns, 2023; https://github.com/Weixin-Liang/ChatGPT-Detector-Bias, MIT licence) found that seven
commercial detectors called more than half of 91 TOEFL essays by non-native writers AI-generated, while
native students' essays passed. The cause they measured is the one our own features read: plainer
vocabulary means lower perplexity. None of the collections this project trains on marks its writers as
non-native, so this is the only measurement of that failure we have.

``--data`` is a local clone of that repository (this project does not copy its data). Every
``Data_and_Results/{Human_Data,GPT_Data}/<set>/data.json`` found there (a JSON list of ``{"document": ...}``)
is scored with the shipped detector exactly as the batch command would score it, and per set the report
gives the verdict counts and the ``ai`` rate. Two diagnostics go beyond the verdict:

* ``would-be ai``: the share whose P(AI) clears the ``ai`` line when the ``min_tokens`` abstention is
  ignored. Most TOEFL essays are shorter than ``min_tokens``, so the product answers ``insufficient_text``;
  this shows whether that abstention is hiding an accusation.
* ``would-be ai at 5% FPR``: the same against the looser line a user sets with ``--target-fpr 0.05``.
* ``<set>@<N>w``: each longer native set cut to the TOEFL set's median word count, so that length and writer
  can be told apart.
* ``mean log-prob``: the median of the per-token mean log-probability, the perplexity signal the paper
  blames, so the bias of the raw feature can be compared with the detector's.

Written to ``reports/writer_bias.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
# The looser line a user gets with ``--target-fpr 0.05``: how fast the bias grows once the line moves.
LOOSE_FPR = 0.05

# Who wrote each set of the Liang et al. collection (by folder name prefix). Anything else is reported as
# "unknown" rather than guessed.
WRITERS = {
    "TOEFL_real": "non-native (TOEFL)",
    "TOEFL_gpt4polished": "non-native, GPT-4-polished",
    "HewlettStudentEssay_real": "native (US 8th grade)",
    "HewlettStudentEssay_GPTsimplify": "native, GPT-simplified",
    "CollegeEssay_real": "native (college admission)",
    "CS224N_real": "native (Stanford CS224N)",
    "CollegeEssay_gpt3": "AI (GPT-3.5)",
    "CS224N_gpt3": "AI (GPT-3.5)",
    "CollegeEssay_gpt3PromptEng": "AI (GPT-3.5, self-edited to evade)",
    "CS224N_gpt3PromptEng": "AI (GPT-3.5, self-edited to evade)",
}


def writer_of(set_name: str) -> str:
    """The writer group of a set folder such as ``TOEFL_real_91`` (longest matching prefix wins)."""
    matches = [k for k in WRITERS if set_name.startswith(k)]
    return WRITERS[max(matches, key=len)] if matches else "unknown"


def load_sets(root: str | Path) -> dict[str, list[str]]:
    """``{set name: texts}`` for every ``data.json`` under the clone's ``Data_and_Results`` (or ``data``)."""
    root = Path(root)
    found: dict[str, list[str]] = {}
    for top in ("Data_and_Results", "data"):
        for path in sorted((root / top).glob("*/*/data.json")):
            if path.parent.name in found:
                continue
            items = json.loads(path.read_text(encoding="utf-8"))
            found[path.parent.name] = [it["document"] if isinstance(it, dict) else str(it) for it in items]
    if not found:
        raise FileNotFoundError(f"no */*/data.json under {root}/Data_and_Results (is it a clone of "
                                "Weixin-Liang/ChatGPT-Detector-Bias?)")
    return found


def length_matched(sets: dict[str, list[str]], reference: str = "TOEFL_real") -> dict[str, list[str]]:
    """``sets`` plus, for every native writers' set whose texts are longer than the reference set's, a copy
    cut to the reference's median word count (named ``<set>@<N>w``).

    Why: TOEFL answers are short, and shorter texts carry less evidence and fall under ``min_tokens``. Native
    essays cut to the same length separate the writer from the length.
    """
    ref = next((texts for name, texts in sets.items() if name.startswith(reference)), None)
    if not ref:
        return dict(sets)
    n_words = int(np.median([len(t.split()) for t in ref]))
    out = dict(sets)
    for name, texts in sets.items():
        if not writer_of(name).startswith("native") or np.median([len(t.split()) for t in texts]) <= n_words:
            continue
        out[f"{name}@{n_words}w"] = [" ".join(t.split()[:n_words]) for t in texts]
    return out


def set_summary(name: str, scores: Sequence, would_be: Sequence[float | None], threshold_ai: float,
                loose_line: float) -> dict:
    """Verdict counts, ``ai`` rates and the diagnostics for one set (JSON-friendly). ``would_be``: per score,
    the combiner's uncapped P(AI) (what the lines compare with), None where the text has no features."""
    labels = Counter(s.label for s in scores)
    would_be_p = [p for p in would_be if p is not None]
    would_be_answered = [p for s, p in zip(scores, would_be) if p is not None and s.prob_ai is not None]
    n = len(scores)
    answered = [s for s in scores if s.prob_ai is not None]
    lp = [s.features.get("mean_logprob") for s in scores if s.features.get("mean_logprob") is not None]
    return {
        "set": name,
        "writer": writer_of(name),
        "n": n,
        "verdicts": dict(sorted(labels.items())),
        "ai_rate": labels.get("ai", 0) / n if n else None,
        "ai_rate_of_answered": labels.get("ai", 0) / len(answered) if answered else None,
        "answered": len(answered),
        "median_tokens": float(np.median([s.n_tokens for s in scores])) if n else None,
        "median_prob_ai_answered": float(np.median([s.prob_ai for s in answered])) if answered else None,
        "would_be_ai_rate": float(np.mean(np.asarray(would_be_p) >= threshold_ai)) if len(would_be_p) else None,
        "ai_verdicts_at_loose_line": int(sum(p >= loose_line for p in would_be_answered)),
        "would_be_ai_rate_at_loose_line": (float(np.mean(np.asarray(would_be_p) >= loose_line))
                                           if len(would_be_p) else None),
        "median_would_be_prob_ai": float(np.median(would_be_p)) if len(would_be_p) else None,
        "median_mean_logprob": float(np.median(lp)) if lp else None,
    }


def evaluate(detector, sets: dict[str, list[str]], batch_size: int = 8, loose_fpr: float = LOOSE_FPR) -> dict:
    """Score every set with ``detector`` (a ``Detector``); returns the report dict."""
    loose_line = detector.ai_line(loose_fpr)
    rows = []
    for name, texts in sets.items():
        scores = detector.score_many(texts, batch_size=batch_size)
        # P(AI) as the combiner gives it before the min_tokens rule: the same features, no abstention.
        with_features = [i for i, s in enumerate(scores) if s.features]
        would_be: list[float | None] = [None] * len(scores)
        if with_features:
            p = detector.bundle.combiner.predict_rows([scores[i].features for i in with_features])
            for i, value in zip(with_features, p):
                would_be[i] = float(value)
        rows.append(set_summary(name, scores, would_be, detector.threshold_ai, loose_line))
    return {"bundle": detector.bundle.name, "threshold_ai": detector.threshold_ai,
            "loose_fpr": loose_fpr, "loose_line": loose_line, "min_tokens": detector.min_tokens, "sets": rows}


def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def to_markdown(report: dict) -> str:
    """The report as a Markdown table, one row per set."""
    from detector.explain import format_threshold  # the page's rounding (four decimals above 0.999)

    lines = [
        f"# Writer bias: bundle `{report['bundle']}` on the Liang et al. (2023) essay sets",
        "",
        f"`ai` line {format_threshold(report['threshold_ai'])}; below {report['min_tokens']} tokens the detector "
        "answers `insufficient_text`. *Would-be ai*: P(AI) at or above the `ai` line with the length rule ignored "
        "(a diagnostic: the product never shows it). *Mean log-prob*: median per-token mean log-probability, "
        f"the perplexity signal the paper blames. *At {report['loose_fpr']:.0%} FPR*: `ai` verdicts, and the would-be "
        f"share, against the looser line `--target-fpr {report['loose_fpr']}` sets "
        f"({format_threshold(report['loose_line'])}).",
        "",
        "| set | writer | n | ai | uncertain | human | insufficient_text | ai rate | median tokens "
        f"| would-be ai | `ai` at {report['loose_fpr']:.0%} FPR | would-be ai at {report['loose_fpr']:.0%} FPR "
        "| median would-be P(AI) | mean log-prob |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["sets"]:
        v = r["verdicts"]
        lines.append(
            f"| {r['set']} | {r['writer']} | {r['n']} | {v.get('ai', 0)} | {v.get('uncertain', 0)} | "
            f"{v.get('human', 0)} | {v.get('insufficient_text', 0)} | {_fmt(r['ai_rate'], True)} | "
            f"{r['median_tokens']:.0f} | {_fmt(r['would_be_ai_rate'], True)} | "
            f"{r['ai_verdicts_at_loose_line']} | {_fmt(r['would_be_ai_rate_at_loose_line'], True)} | "
            f"{_fmt(r['median_would_be_prob_ai'])} | {_fmt(r['median_mean_logprob'])} |")
    other = sum(r["verdicts"].get(k, 0) for r in report["sets"]
                for k in r["verdicts"] if k not in ("ai", "uncertain", "human", "insufficient_text"))
    if other:
        lines += ["", f"{other} texts got another status (unsupported_language or error); see the JSON."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Score the sets of a local clone and write ``reports/writer_bias.{md,json}``."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from detector import Detector
    from detector.bundle import DEFAULT_BUNDLE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="local clone of Weixin-Liang/ChatGPT-Detector-Bias")
    ap.add_argument("--bundle", default=None, help="bundle name or path (default: the shipped English one)")
    ap.add_argument("--dtype", default=None, help="backbone precision (default: the loader's auto)")
    ap.add_argument("--out", default=str(REPO_ROOT / "reports" / "writer_bias"),
                    help="write <out>.md and <out>.json")
    args = ap.parse_args(argv)

    # one bundle, not the language router: these are English essays, and the report reads that bundle's lines
    detector = Detector.load(args.bundle or DEFAULT_BUNDLE, dtype=args.dtype)
    report = evaluate(detector, length_matched(load_sets(args.data)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = to_markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
