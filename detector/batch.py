"""Score many files/folders, writing one durable row per file as work finishes, resumably.

Why: a teacher scores a folder of hundreds of essays on a laptop; a crash, Ctrl-C or a
killed process must never lose finished work or leave a broken results file, and one bad
file (empty, binary, corrupt .docx, undecodable) must never stop the batch.

Durability design
-----------------
* The durable state is always an append-only JSONL *journal*: ``out`` itself for .jsonl
  output, ``<out>.partial.jsonl`` for .csv output. After every scored chunk its rows are
  appended, flushed and ``os.fsync``-ed, so a SIGKILL loses at most the chunk in flight.
  A kill can tear only the last line (no trailing newline); resume truncates the file to
  its last complete line, so every kept row is whole.
* CSV cannot be appended safely (a torn row is a valid-looking short row), so the CSV is
  rewritten from all rows so far after every chunk, atomically (temp file + fsync +
  ``os.replace``): a killed run leaves a complete CSV of the rows done so far. After a
  successful run the journal is deleted; resume reads the journal if it exists (it is
  always at least as new as the CSV), otherwise the CSV.
* Resume keys on ``(path, sha256)``: ``path`` compared as an absolute path, ``sha256`` of
  the bytes the text came from (see ``detector.documents``). A file with an ``ok`` row and
  the same hash is skipped; a changed file, or one whose row is an error, is processed
  again and its new row supersedes the old. Superseded rows may sit in the journal until
  the run ends, when the output is compacted atomically to exactly one row (the newest)
  per path, sorted by path. Rows of files not in this run are kept.
* Without ``resume`` an existing output (or journal) is never overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector.documents import SUPPORTED_EXTENSIONS, Document, DocumentError, read_document
from detector.score import ERROR

OK = "ok"
SCORING_ERROR = "scoring_error"
BASE_COLUMNS = ("path", "status", "prob_ai", "label", "n_tokens", "lang", "max_segment_prob_ai",
                "error", "warnings", "sha256")
_FLOAT_COLUMNS = ("prob_ai", "max_segment_prob_ai")
# Documents are read in waves (bounded memory), sorted by length within a wave so each
# score_many call gets texts of similar length (less padding), and scored in chunks.
WAVE_MAX_FILES = 256
WAVE_MAX_CHARS = 20_000_000
CHUNK_BATCHES = 4  # chunk = batch_size * CHUNK_BATCHES texts per score_many call


class OutputExistsError(Exception):
    """The output file exists and ``resume`` was not asked for: refuse to overwrite it."""


@dataclass
class BatchSummary:
    """What a batch run did: counts per label and status, failures, scored vs resumed."""

    label_counts: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str | None]] = field(default_factory=list)
    n_scored: int = 0
    n_skipped_resume: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    out: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len(self.rows)

    def format(self, max_failures: int = 10) -> str:
        """A short plain-text report for stderr."""
        lines = [f"{self.n_files} file(s): {self.n_scored} scored now, "
                 f"{self.n_skipped_resume} already done (resumed)"]
        if self.out:
            lines[0] += f"; results in {self.out}"
        lines += self.notes
        for title, counts in (("label", self.label_counts), ("status", self.status_counts)):
            if counts:
                width = max(len(k) for k in counts)
                lines.append(f"  {title}:")
                lines += [f"    {k:<{width}}  {v:>6}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
        if self.failures:
            lines.append(f"  problems ({len(self.failures)}):")
            for path, status, error in self.failures[:max_failures]:
                lines.append(f"    [{status}] {error or path}")
            if len(self.failures) > max_failures:
                lines.append(f"    ... and {len(self.failures) - max_failures} more (see the status column)")
        return "\n".join(lines)


# --- inputs ------------------------------------------------------------------------------


def _wanted(name: str) -> bool:
    # Hidden files and Word lock files ("~$essay.docx") are never essays.
    return (name.lower().endswith(SUPPORTED_EXTENSIONS) and not name.startswith(".")
            and not name.startswith("~$"))


def _warn_unlistable(err: OSError) -> None:
    print(f"warning: cannot list folder {err.filename}: {err.strerror or err}", file=sys.stderr)


def _folder_files(folder: Path, recursive: bool) -> Iterable[Path]:
    if recursive:
        for root, dirs, files in os.walk(folder, onerror=_warn_unlistable):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            yield from (Path(root) / name for name in files if _wanted(name))
        return
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        _warn_unlistable(e)
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir and _wanted(entry.name):  # broken symlinks are kept: they get a row
            yield Path(entry.path)


def iter_inputs(paths: Sequence[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Files to score: files named directly (always, so bad ones get a row) plus supported files in folders."""
    found: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in _folder_files(p, recursive):
                found.setdefault(os.path.abspath(f), f)
        else:
            found.setdefault(os.path.abspath(p), p)
    return sorted(found.values(), key=str)


# --- rows --------------------------------------------------------------------------------


def feature_columns(feature_names: Iterable[str]) -> list[str]:
    """Feature column names: the plain names, prefixed with ``feature_`` only if they clash with a base column."""
    return [f"feature_{n}" if n in BASE_COLUMNS else n for n in feature_names]


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN/inf become None (they are not valid JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _clean(value.item())
    return value


def _merge_warnings(*groups: Iterable[str] | None) -> list[str]:
    out: list[str] = []
    for group in groups:
        for w in group or ():
            if w not in out:
                out.append(str(w))
    return out


def _empty_row(path: str, feature_names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BASE_COLUMNS)
    row["path"] = path
    row["warnings"] = []
    row.update(dict.fromkeys(feature_columns(feature_names)))
    return row


def error_row(path: str, status: str, error: str, feature_names: Sequence[str],
              doc: Document | None = None) -> dict[str, Any]:
    """The row of a file that could not be read or scored (label ``error``, no probability)."""
    row = _empty_row(path, feature_names)
    row.update(status=status, label=ERROR, error=error)
    if doc is not None:
        row.update(sha256=doc.sha256, warnings=list(doc.warnings))
    return row


def score_row(doc: Document, score: Any, feature_names: Sequence[str]) -> dict[str, Any]:
    """The row of a scored document; a Score labelled ``error`` becomes status ``scoring_error``."""
    row = _empty_row(doc.path, feature_names)
    label = getattr(score, "label", None)
    err = getattr(score, "error", None)
    is_error = label == ERROR
    row.update(
        status=SCORING_ERROR if is_error else OK,
        prob_ai=_clean(getattr(score, "prob_ai", None)),
        label=label,
        n_tokens=_clean(getattr(score, "n_tokens", None)),
        lang=getattr(score, "lang", None),
        max_segment_prob_ai=_clean(getattr(score, "max_segment_prob_ai", None)),
        error=(err or "the detector returned an error") if is_error else err,
        warnings=_merge_warnings(doc.warnings, getattr(score, "warnings", None)),
        sha256=doc.sha256,
    )
    features = getattr(score, "features", None) or {}
    for name, column in zip(feature_names, feature_columns(feature_names)):
        row[column] = _clean(features.get(name))
    return row


def _key(path: str) -> str:
    return os.path.abspath(path)


# --- durable output ----------------------------------------------------------------------


def output_files(out: Path) -> tuple[str, Path]:
    """(format, journal path) for an output path: .csv is journaled in ``<out>.partial.jsonl``."""
    if out.suffix.lower() == ".csv":
        return "csv", out.with_name(out.name + ".partial.jsonl")
    return "jsonl", out


def check_output(out: Path, resume: bool) -> None:
    """Raise OutputExistsError (before any work) if ``out`` would be overwritten without ``resume``."""
    if out.is_dir():
        raise OutputExistsError(f"--out {out} is a directory; give a file name such as {out / 'results.jsonl'}")
    if resume:
        return
    _, journal = output_files(out)
    for p in (out, journal):
        if p.exists():
            raise OutputExistsError(f"{p} already exists; pass --resume to continue that run, "
                                    "or choose another --out (it is never overwritten silently)")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def load_jsonl_rows(path: Path, repair: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of a journal, dropping (and, with ``repair``, truncating away) a torn last line."""
    notes: list[str] = []
    with open(path, "rb") as f:
        data = f.read()
    if data.strip() and not data.startswith(b'{"path"'):  # never "repair" someone else's file
        raise OutputExistsError(f"{path} exists but is not a results file written by this tool; "
                                "choose another --out")
    end = data.rfind(b"\n") + 1
    if end < len(data):
        notes.append(f"note: dropped an incomplete last line of {path} (the previous run was interrupted)")
        if repair:
            with open(path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
    rows: list[dict[str, Any]] = []
    n_bad = 0
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            n_bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("path"), str):
            rows.append(row)
        else:
            n_bad += 1
    if n_bad:
        notes.append(f"note: ignored {n_bad} unreadable line(s) in {path}")
    return rows, notes


def _parse_csv_value(column: str, value: str) -> Any:
    if column == "warnings":
        return [w for w in value.split(";") if w]
    if value == "":
        return None
    if column == "n_tokens":
        try:
            return int(float(value))
        except ValueError:
            return value
    if column in _FLOAT_COLUMNS or column not in BASE_COLUMNS:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_csv_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results CSV written by this module, with types restored."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames and list(reader.fieldnames[:2]) != ["path", "status"]:
            raise OutputExistsError(f"{path} exists but is not a results file written by this tool; "
                                    "choose another --out")
        return [{k: _parse_csv_value(k, v or "") for k, v in row.items() if k is not None}
                for row in reader if row.get("path")]


def rows_to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of rows; warnings joined with ';', None as an empty cell."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {k: ("" if v is None else v) for k, v in row.items()}
        cells["warnings"] = ";".join(row.get("warnings") or [])
        writer.writerow(cells)
    return buf.getvalue()


class _Sink:
    """Holds every row (newest per path) and persists them durably; ``out=None`` keeps them in memory only."""

    def __init__(self, out: Path | None, columns: Sequence[str], resume: bool) -> None:
        self.out = out
        self.columns = list(columns)
        self.rows: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.fh = None
        if out is None:
            return
        self.fmt, self.journal = output_files(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        seed: list[dict[str, Any]] = []
        if resume and self.journal.exists():
            loaded, self.notes = load_jsonl_rows(self.journal)
        elif resume and self.fmt == "csv" and out.exists():
            loaded = seed = load_csv_rows(out)
        else:
            loaded = []
        for row in loaded:
            self.rows[_key(row["path"])] = row
        self.fh = open(self.journal, "a", encoding="utf-8")
        if seed:  # resuming a finished CSV run: the journal must hold every row again
            self._append(seed)

    def get(self, path: str) -> dict[str, Any] | None:
        return self.rows.get(_key(path))

    def _append(self, rows: Sequence[dict[str, Any]]) -> None:
        assert self.fh is not None
        self.fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record rows; on disk they are durable (fsync) when this returns."""
        if not rows:
            return
        for row in rows:
            self.rows[_key(row["path"])] = row
        if self.fh is None:
            return
        self._append(rows)
        if self.fmt == "csv":
            _atomic_write_text(self.out, rows_to_csv(self._sorted(), self.columns))

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: r["path"])

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def finish(self) -> None:
        """Compact to one row per path (atomically) and, for CSV, drop the journal."""
        if self.out is None:
            return
        self.close()
        if self.fmt == "csv":
            _atomic_write_text(self.out, rows_to_csv(self._sorted(), self.columns))
            self.journal.unlink(missing_ok=True)
            _fsync_dir(self.journal.parent)
        else:
            _atomic_write_text(self.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._sorted()))


# --- scoring -----------------------------------------------------------------------------


def _score_chunk(det: Any, texts: list[str], batch_size: int) -> list[Any]:
    """Scores for texts; if the batch call fails, score one by one so one bad text costs only its own row.

    Items are Score objects or the exception raised for that text.
    """
    try:
        scores = list(det.score_many(texts, batch_size=batch_size))
        if len(scores) != len(texts):
            raise RuntimeError(f"score_many returned {len(scores)} scores for {len(texts)} texts")
        return scores
    except Exception as e:  # noqa: BLE001 - any detector failure is isolated per text below
        if len(texts) == 1:
            return [e]
    results: list[Any] = []
    for text in texts:
        try:
            results.append(det.score_many([text], batch_size=1)[0])
        except Exception as e:  # noqa: BLE001
            results.append(e)
    return results


def _make_progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="file", desc="scoring", dynamic_ncols=True)


def score_paths(det: Any, paths: Sequence[str | os.PathLike], out: Path | str | None, *, recursive: bool = False,
                batch_size: int = 8, resume: bool = False, progress: bool = True) -> BatchSummary:
    """Score every input file with ``det``, persisting each row as soon as its chunk is done.

    ``out`` (.jsonl or .csv; None = keep rows in memory only) must not exist unless ``resume``.
    Returns a summary whose ``rows`` are the final rows of this run's inputs, in input order.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out = Path(out) if out is not None else None
    if out is not None:
        check_output(out, resume)
    inputs = iter_inputs(paths, recursive)
    if out is not None:  # never score our own output files
        _, journal = output_files(out)
        own = {_key(str(out)), _key(str(journal))}
        inputs = [p for p in inputs if _key(str(p)) not in own]
    feature_names = list(getattr(det, "feature_names", []) or [])
    columns = list(BASE_COLUMNS) + feature_columns(feature_names)
    sink = _Sink(out, columns, resume)
    summary = BatchSummary(out=str(out) if out is not None else None, notes=list(sink.notes))
    chunk_size = batch_size * CHUNK_BATCHES
    bar = _make_progress(len(inputs), progress)
    try:
        wave: list[Document] = []
        wave_chars = 0
        bad_rows: list[dict[str, Any]] = []

        def flush_wave() -> None:
            nonlocal wave, wave_chars, bad_rows
            sink.write(bad_rows)  # bad files get their rows before any (slow) scoring
            bar.update(len(bad_rows))
            bad_rows = []
            docs = sorted(wave, key=lambda d: len(d.text))
            wave, wave_chars = [], 0
            for start in range(0, len(docs), chunk_size):
                chunk = docs[start:start + chunk_size]
                results = _score_chunk(det, [d.text for d in chunk], batch_size)
                rows = []
                for doc, result in zip(chunk, results):
                    if isinstance(result, BaseException):
                        msg = f"{doc.path}: scoring failed ({type(result).__name__}: {result})"
                        rows.append(error_row(doc.path, SCORING_ERROR, msg, feature_names, doc))
                    else:
                        rows.append(score_row(doc, result, feature_names))
                sink.write(rows)
                summary.n_scored += len(rows)
                bar.update(len(rows))

        for path in inputs:
            name = str(path)
            try:
                doc = read_document(path)
            except DocumentError as e:
                bad_rows.append(error_row(name, e.kind, e.message, feature_names))
                continue
            old = sink.get(name) if resume else None
            if old is not None and old.get("status") == OK and old.get("sha256") == doc.sha256:
                summary.n_skipped_resume += 1
                bar.update(1)
                continue
            wave.append(doc)
            wave_chars += len(doc.text)
            if len(wave) >= WAVE_MAX_FILES or wave_chars >= WAVE_MAX_CHARS:
                flush_wave()
        flush_wave()
        sink.finish()
    finally:
        bar.close()
        sink.close()

    for path in inputs:
        row = sink.get(str(path))
        if row is None:  # cannot happen; guard so the summary never hides a file
            continue
        summary.rows.append(row)
    summary.label_counts = dict(Counter(str(r.get("label")) for r in summary.rows))
    summary.status_counts = dict(Counter(str(r.get("status")) for r in summary.rows))
    summary.failures = [(r["path"], str(r.get("status")), r.get("error")) for r in summary.rows
                        if r.get("status") != OK]
    return summary


def format_table(rows: Sequence[dict[str, Any]], max_path: int = 70) -> str:
    """A fixed-width table (path, label, prob_ai, n_tokens, status) for the terminal."""
    def short(path: str) -> str:
        return path if len(path) <= max_path else "..." + path[-(max_path - 3):]

    def prob(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"

    table = [("path", "label", "prob_ai", "n_tokens", "status")]
    table += [(short(str(r.get("path"))), str(r.get("label") or "-"), prob(r.get("prob_ai")),
               "-" if r.get("n_tokens") is None else str(r.get("n_tokens")), str(r.get("status")))
              for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    right = (False, False, True, True, False)
    return "\n".join(
        "  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(line, widths, right)).rstrip()
        for line in table
    )
