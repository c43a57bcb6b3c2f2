"""Command line: ``python -m detector score PATH... [--out results.jsonl|results.csv]``.

Why a separate module: argument handling and exit codes are tested without loading a
model (``_load_detector`` is the single place that does, and tests replace it).
Exit codes: 0 run completed (even if some files were bad; see the status column),
1 nothing could be done (no input exists, output exists without --resume, the detector
could not be loaded), 2 bad arguments, 130 interrupted (rerun with --resume).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for --help tests and docs)."""
    parser = argparse.ArgumentParser(prog="python -m detector", description="Detect AI-generated text.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    score = sub.add_parser("score", help="score files and folders (.txt .md .docx .pdf .html)",
                           description="Score files and folders. Without --out, print a table and write no file.")
    score.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to score")
    score.add_argument("--out", type=Path, default=None,
                       help="write one row per file to this .jsonl or .csv file (durable, resumable)")
    score.add_argument("--recursive", "-r", action="store_true", help="also score files in subfolders")
    score.add_argument("--bundle", default=None, help="detector bundle name or path (default: the shipped one)")
    score.add_argument("--lm", default=None, help="override the language model spec of the bundle")
    score.add_argument("--batch-size", type=_positive_int, default=8, help="texts per model batch (default 8)")
    score.add_argument("--prior", type=_probability, default=None,
                       help="base rate of AI text in your population, e.g. 0.1 (default: the calibration set's)")
    score.add_argument("--target-fpr", type=_probability, default=None,
                       help="share of human texts you accept being called 'ai' (default: the bundle's, 0.01)")
    score.add_argument("--resume", action="store_true",
                       help="continue an interrupted run: skip files already scored in --out (same content)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _probability(value: str) -> float:
    p = float(value)
    if not 0.0 < p < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return p


class _WithOptions:
    """The detector with the run's --prior/--target-fpr bound, as the batch module expects it."""

    def __init__(self, det: Any, **options: float | None) -> None:
        self.det, self.options = det, {k: v for k, v in options.items() if v is not None}
        self.feature_names = det.feature_names

    def score_many(self, texts: list[str], batch_size: int = 8) -> list[Any]:
        return self.det.score_many(texts, batch_size=batch_size, **self.options)


def _load_detector(args: argparse.Namespace) -> Any:
    """Load the detector (the one slow step); tests monkeypatch this."""
    from detector.detector import Detector

    det = Detector.load(bundle=args.bundle, lm=args.lm)
    return _WithOptions(det, prior=args.prior, target_fpr=args.target_fpr)


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _cmd_score(args: argparse.Namespace) -> int:
    from detector.batch import OutputExistsError, check_output, format_table, iter_inputs, score_paths

    if args.resume and args.out is None:
        _err("--resume needs --out (the results file to continue)")
        return EXIT_USAGE
    existing = [p for p in args.paths if Path(p).exists() or Path(p).is_symlink()]
    if not existing:
        _err("none of the input paths exist: " + ", ".join(args.paths))
        return EXIT_FAILURE
    if not iter_inputs(args.paths, args.recursive):
        hint = "" if args.recursive else " (files in subfolders need --recursive)"
        _err(f"no supported files (.txt .md .docx .pdf .html .htm) found{hint}")
        return EXIT_FAILURE
    if args.out is not None:  # check before the slow model load
        try:
            check_output(args.out, args.resume)
        except OutputExistsError as e:
            _err(str(e))
            return EXIT_FAILURE
    try:
        det = _load_detector(args)
    except Exception as e:  # noqa: BLE001 - any load failure is reported the same way
        what = ", ".join(f"{k}={v}" for k, v in (("bundle", args.bundle), ("lm", args.lm)) if v) or "defaults"
        _err(f"could not load the detector ({what}): {type(e).__name__}: {e}")
        return EXIT_FAILURE
    try:
        summary = score_paths(det, args.paths, args.out, recursive=args.recursive, batch_size=args.batch_size,
                              resume=args.resume, progress=not args.no_progress)
    except OutputExistsError as e:
        _err(str(e))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        hint = f"; finished rows are saved in {args.out}: rerun with --resume to continue" if args.out else ""
        _err(f"interrupted{hint}")
        return EXIT_INTERRUPTED
    if args.out is None:
        print(format_table(summary.rows))
    print(summary.format(), file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (argparse errors give 2)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on --help (0) and on bad arguments (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.command == "score":
        return _cmd_score(args)
    parser.error(f"unknown command {args.command}")  # unreachable: subparsers are required
    return EXIT_USAGE
