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
* Resume keys on ``(path, sha256)`` (``resume_key`` / ``already_done``, shared with the Ray
  engine in ``detector.distributed``): ``path`` compared as an absolute path, ``sha256`` of
  the bytes the text came from (see ``detector.documents``). A file with an ``ok`` row and
  the same hash is skipped; a changed file, or one whose row is an error, is processed
  again and its new row supersedes the old. Superseded rows may sit in the journal until
  the run ends, when the output is compacted atomically to exactly one row (the newest)
  per path, sorted by path. Rows of files not in this run are kept.
* Without ``resume`` an existing output (or journal) is never overwritten.
* Parquet output works like CSV (journal + atomic rewrite), with the column types of ``row_schema``.

Inputs are files (see ``detector.documents.read_document``) and JSON Lines / Parquet tables
named directly, whose records are inputs of their own (``path`` = ``<table>#<id>``).
Row building (``score_documents``, ``error_row``, ``score_row``), resume keys and the durable
sink live here once and are used by both engines: ``score_paths`` (local) and
``detector.distributed.score_paths_ray``.
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

from detector.display import format_probability, verdict_note
from detector.documents import SUPPORTED_EXTENSIONS, Document, DocumentError, is_table, read_input
from detector.score import ERROR

OK = "ok"
SCORING_ERROR = "scoring_error"
BASE_COLUMNS = ("path", "status", "prob_ai", "label", "n_tokens", "lang", "bundle", "max_segment_prob_ai",
                "error", "warnings", "sha256", "precision")
_INT_COLUMNS = ("n_tokens",)
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
    precision: str | None = None
    engine: str = "local"

    @property
    def n_files(self) -> int:
        return len(self.rows)

    @property
    def all_failed(self) -> bool:
        """True when there were inputs and not one of them got a result (every row is an error).

        Why: a run where the model failed on everything (or nothing could be read) must not look
        like a success to a script checking the exit status.
        """
        return bool(self.rows) and not any(r.get("status") == OK for r in self.rows)

    @property
    def n_model_failures(self) -> int:
        """Rows where the model itself failed (status ``scoring_error``), as opposed to unreadable files."""
        return sum(r.get("status") == SCORING_ERROR for r in self.rows)

    def format(self, max_failures: int = 10) -> str:
        """A short plain-text report for stderr."""
        lines = [f"{self.n_files} file(s): {self.n_scored} scored now, "
                 f"{self.n_skipped_resume} already done (resumed)"]
        if self.out:
            lines[0] += f"; results in {self.out}"
        if self.precision or self.engine != "local":
            lines.append(f"  engine {self.engine}, model precision {self.precision or 'unknown (nothing scored)'}")
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


def row_columns(feature_names: Iterable[str]) -> list[str]:
    """Every column of a results row, in order: the base columns, then the feature columns."""
    return list(BASE_COLUMNS) + feature_columns(feature_names)


def row_schema(columns: Sequence[str]) -> Any:
    """The pyarrow schema of rows with these columns (Parquet output, Ray batches).

    Why explicit: a column that is all-None in one batch would otherwise be typed ``null`` there
    and ``double`` elsewhere, and the batches could not be concatenated.
    """
    import pyarrow as pa

    def kind(column: str) -> Any:
        if column == "warnings":
            return pa.list_(pa.string())
        if column in _INT_COLUMNS:
            return pa.int64()
        if column in _FLOAT_COLUMNS or column not in BASE_COLUMNS:
            return pa.float64()
        return pa.string()

    return pa.schema([(c, kind(c)) for c in columns])


def rows_to_arrow(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A pyarrow Table of rows with the ``row_schema`` types (missing keys become nulls)."""
    import pyarrow as pa

    schema = row_schema(columns)
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=schema)


def _empty_row(path: str, feature_names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(BASE_COLUMNS)
    row["path"] = path
    row["warnings"] = []
    row.update(dict.fromkeys(feature_columns(feature_names)))
    return row


def error_row(path: str, status: str, error: str, feature_names: Sequence[str],
              doc: Document | None = None, precision: str | None = None) -> dict[str, Any]:
    """The row of a file that could not be read or scored (label ``error``, no probability).

    ``precision`` is set only when the model ran on the text (a scoring error), never for unreadable files.
    """
    row = _empty_row(path, feature_names)
    row.update(status=status, label=ERROR, error=error, precision=precision)
    if doc is not None:
        row.update(sha256=doc.sha256, warnings=list(doc.warnings))
    return row


def score_row(doc: Document, score: Any, feature_names: Sequence[str],
              precision: str | None = None) -> dict[str, Any]:
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
        bundle=getattr(score, "bundle", None),
        max_segment_prob_ai=_clean(getattr(score, "max_segment_prob_ai", None)),
        error=(err or "the detector returned an error") if is_error else err,
        warnings=_merge_warnings(doc.warnings, getattr(score, "warnings", None)),
        sha256=doc.sha256,
        precision=precision,
    )
    features = getattr(score, "features", None) or {}
    for name, column in zip(feature_names, feature_columns(feature_names)):
        row[column] = _clean(features.get(name))
    return row


def resume_key(path: str) -> str:
    """The identity of an input across runs: its absolute path (``<table>#<id>`` for table records)."""
    return os.path.abspath(path)


def already_done(old_row: dict[str, Any] | None, sha256: str) -> bool:
    """Resume rule: skip an input whose previous row is ``ok`` for the same content hash."""
    return old_row is not None and old_row.get("status") == OK and old_row.get("sha256") == sha256


def detector_precision(det: Any) -> str | None:
    """The backbone precision of a detector ('float32', 'bfloat16'); None for stand-ins without one."""
    value = getattr(det, "precision", None)
    return value if isinstance(value, str) else None


def input_error_row(name: str, err: DocumentError, feature_names: Sequence[str]) -> dict[str, Any]:
    """The row of an input that could not be read (its status is the error kind)."""
    return error_row(name, err.kind, err.message, feature_names)


def score_documents(det: Any, docs: Sequence[Document], feature_names: Sequence[str],
                    batch_size: int) -> list[dict[str, Any]]:
    """Score documents with ``det`` and build their rows; a failure costs only the failing text's row.

    The one place where rows of scored inputs are made, for the local and the Ray engine alike.
    """
    if not docs:
        return []
    precision = detector_precision(det)
    results = _score_chunk(det, [d.text for d in docs], batch_size)
    rows = []
    for doc, result in zip(docs, results):
        if isinstance(result, BaseException):
            msg = f"{doc.path}: scoring failed ({type(result).__name__}: {result})"
            rows.append(error_row(doc.path, SCORING_ERROR, msg, feature_names, doc, precision))
        else:
            rows.append(score_row(doc, result, feature_names, precision))
    return rows


class WithOptions:
    """A detector with a run's ``prior``/``target_fpr`` bound, as the batch code calls it (``score_many``)."""

    def __init__(self, det: Any, **options: float | None) -> None:
        self.det, self.options = det, {k: v for k, v in options.items() if v is not None}
        self.feature_names = det.feature_names
        self.precision = detector_precision(det)

    def score_many(self, texts: list[str], batch_size: int = 8) -> list[Any]:
        return self.det.score_many(texts, batch_size=batch_size, **self.options)


def load_detector(bundle: str | None = None, lm: str | None = None, dtype: str | None = None,
                  prior: float | None = None, target_fpr: float | None = None) -> WithOptions:
    """Load the detector the way every batch engine does (``detector.load``), with the run's options bound.

    Routed by language unless a bundle or backbone is named."""
    from detector import load

    det = load(bundle=bundle, lm=lm, dtype=dtype)
    return WithOptions(det, prior=prior, target_fpr=target_fpr)


# --- durable output ----------------------------------------------------------------------


OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}  # anything else is JSON Lines


def output_files(out: Path) -> tuple[str, Path]:
    """(format, journal path) for an output path: .csv and .parquet are journaled in ``<out>.partial.jsonl``."""
    fmt = OUTPUT_FORMATS.get(out.suffix.lower(), "jsonl")
    if fmt == "jsonl":
        return fmt, out
    return fmt, out.with_name(out.name + ".partial.jsonl")


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
    _atomic_write_bytes(path, text.encode("utf-8"))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def rows_to_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """Parquet bytes of rows with the ``row_schema`` column types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(rows_to_arrow(rows, columns), buf)
    return buf.getvalue().to_pybytes()


def load_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results Parquet file written by this module."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any pyarrow failure: not ours, never overwrite it
        raise OutputExistsError(f"{path} exists but is not a readable Parquet file ({e}); choose another --out") from e
    if table.column_names[:2] != ["path", "status"]:
        raise OutputExistsError(f"{path} exists but is not a results file written by this tool; choose another --out")
    return [r for r in table.to_pylist() if r.get("path")]


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


class ResultSink:
    """Holds every row (newest per path) and persists them durably; ``out=None`` keeps them in memory only.

    ``columns`` may be None when the engine learns them only from its first rows (Ray: the feature
    names are known once a worker has loaded the detector); they are then taken from the first row.
    """

    def __init__(self, out: Path | None, columns: Sequence[str] | None, resume: bool) -> None:
        self.out = out
        self.columns = list(columns) if columns else None
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
        elif resume and self.fmt == "parquet" and out.exists():
            loaded = seed = load_parquet_rows(out)
        else:
            loaded = []
        for row in loaded:
            self.rows[resume_key(row["path"])] = row
        self.fh = open(self.journal, "a", encoding="utf-8")
        if seed:  # resuming a finished CSV/Parquet run: the journal must hold every row again
            self._append(seed)

    def get(self, path: str) -> dict[str, Any] | None:
        return self.rows.get(resume_key(path))

    def done_hashes(self) -> dict[str, str]:
        """``resume_key -> sha256`` of every row that ``already_done`` would skip (for remote readers)."""
        return {k: r["sha256"] for k, r in self.rows.items() if r.get("status") == OK and r.get("sha256")}

    def _append(self, rows: Sequence[dict[str, Any]]) -> None:
        assert self.fh is not None
        self.fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def _columns(self) -> list[str]:
        if self.columns is None:
            first = next(iter(self.rows.values()), None)
            self.columns = list(first) if first else list(BASE_COLUMNS)
        return self.columns

    def _rewrite(self) -> None:
        assert self.out is not None
        if self.fmt == "csv":
            _atomic_write_text(self.out, rows_to_csv(self._sorted(), self._columns()))
        elif self.fmt == "parquet":
            _atomic_write_bytes(self.out, rows_to_parquet(self._sorted(), self._columns()))
        else:
            _atomic_write_text(self.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._sorted()))

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record rows; on disk they are durable (fsync) when this returns."""
        if not rows:
            return
        if self.columns is None:
            self.columns = list(rows[0])
        for row in rows:
            self.rows[resume_key(row["path"])] = row
        if self.fh is None:
            return
        self._append(rows)
        if self.fmt != "jsonl":
            self._rewrite()

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: r["path"])

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def finish(self) -> None:
        """Compact to one row per path (atomically) and, for CSV/Parquet, drop the journal."""
        if self.out is None:
            return
        self.close()
        self._rewrite()
        if self.fmt != "jsonl":
            self.journal.unlink(missing_ok=True)
            _fsync_dir(self.journal.parent)


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


def make_progress(total: int | None, enabled: bool) -> Any:
    """The progress bar on stderr (tqdm), shared by both engines; ``total=None`` when tables make it unknown."""
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="file", desc="scoring", dynamic_ncols=True)


def prepare_run(paths: Sequence[str | os.PathLike], out: Path | str | None, recursive: bool,
                resume: bool) -> tuple[Path | None, list[Path]]:
    """Check the output (refuse to overwrite without resume) and list the inputs, minus our own output files."""
    out = Path(out) if out is not None else None
    if out is not None:
        check_output(out, resume)
    inputs = iter_inputs(paths, recursive)
    if out is not None:  # never score our own output files
        _, journal = output_files(out)
        own = {resume_key(str(out)), resume_key(str(journal))}
        inputs = [p for p in inputs if resume_key(str(p)) not in own]
    return out, inputs


def finish_summary(summary: BatchSummary, sink: ResultSink, names: Iterable[str]) -> BatchSummary:
    """Fill the summary with this run's final rows (one per input name, in the given order) and counts."""
    seen: set[str] = set()
    for name in names:
        key = resume_key(name)
        row = sink.rows.get(key)
        if row is None or key in seen:  # cannot happen / duplicate record ids: the row is there once
            continue
        seen.add(key)
        summary.rows.append(row)
    summary.label_counts = dict(Counter(str(r.get("label")) for r in summary.rows))
    summary.status_counts = dict(Counter(str(r.get("status")) for r in summary.rows))
    summary.failures = [(r["path"], str(r.get("status")), r.get("error")) for r in summary.rows
                        if r.get("status") != OK]
    if summary.precision is None:
        summary.precision = next((r["precision"] for r in summary.rows if r.get("precision")), None)
    return summary


def score_paths(det: Any, paths: Sequence[str | os.PathLike], out: Path | str | None, *, recursive: bool = False,
                batch_size: int = 8, resume: bool = False, progress: bool = True) -> BatchSummary:
    """Score every input with ``det`` in this process, persisting each row as soon as its chunk is done.

    ``out`` (.jsonl, .csv or .parquet; None = keep rows in memory only) must not exist unless ``resume``.
    Returns a summary whose ``rows`` are the final rows of this run's inputs, in input order.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out, inputs = prepare_run(paths, out, recursive, resume)
    feature_names = list(getattr(det, "feature_names", []) or [])
    sink = ResultSink(out, row_columns(feature_names), resume)
    summary = BatchSummary(out=str(out) if out is not None else None, notes=list(sink.notes),
                           precision=detector_precision(det))
    chunk_size = batch_size * CHUNK_BATCHES
    names: list[str] = []
    bar = make_progress(None if any(is_table(p) for p in inputs) else len(inputs), progress)
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
                rows = score_documents(det, docs[start:start + chunk_size], feature_names, batch_size)
                sink.write(rows)
                summary.n_scored += len(rows)
                bar.update(len(rows))

        for path in inputs:
            for name, doc in read_input(path):
                names.append(name)
                if isinstance(doc, DocumentError):
                    bad_rows.append(input_error_row(name, doc, feature_names))
                    continue
                if resume and already_done(sink.get(name), doc.sha256):
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
    return finish_summary(summary, sink, names)


def format_table(rows: Sequence[dict[str, Any]], max_path: int = 70) -> str:
    """A fixed-width table (path, label, prob_ai, n_tokens, status) for the terminal.

    ``prob_ai`` is printed by ``detector.display.format_probability`` (three decimals, "> 0.999" at the cap), the
    rule the page uses too. A ``note`` column appears when some row's verdict needs its line named
    (``detector.score.line_notes``: "> 0.999" yet ``uncertain``, because the `ai` line is higher still).
    """
    def short(path: str) -> str:
        return path if len(path) <= max_path else "..." + path[-(max_path - 3):]

    def prob(value: Any) -> str:
        return format_probability(value) if isinstance(value, (int, float)) else "-"

    notes = [verdict_note(r.get("warnings")) for r in rows]
    table = [("path", "label", "prob_ai", "n_tokens", "status", "note")]
    table += [(short(str(r.get("path"))), str(r.get("label") or "-"), prob(r.get("prob_ai")),
               "-" if r.get("n_tokens") is None else str(r.get("n_tokens")), str(r.get("status")), note)
              for r, note in zip(rows, notes)]
    if not any(notes):
        table = [line[:5] for line in table]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    right = (False, False, True, True, False, False)
    return "\n".join(
        "  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(line, widths, right)).rstrip()
        for line in table
    )
