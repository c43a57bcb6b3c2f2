"""Scale out on Ray: the batch command's ``--engine ray`` and the ``score_dataset`` API.

Why Ray: the LM pass is compute-bound and embarrassingly parallel per text, so throughput
grows with cores and nodes as long as each worker keeps one loaded model. Ray Data gives
exactly that: a pool of N actors (``map_batches`` with a callable class), each loading one
``Detector`` once, fed with batches as they free up, on one machine or a whole cluster.

Same guarantees as the local engine (``detector.batch.score_paths``), from the same code:
inputs are listed by ``prepare_run``, read by ``detector.documents.read_input`` (inside Ray
tasks), resumed with ``already_done``/``resume_key``, turned into rows by ``score_documents``
/ ``input_error_row``, and written by the driver through the same durable sink (journal
appended and fsynced per finished batch, CSV/Parquet rewritten atomically). Only the driver
writes, so a killed run loses at most the batches in flight.

Ray is an optional extra (``requirements-scale.txt``); it is imported only inside these
functions, so the core install never needs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detector.batch import (
    CHUNK_BATCHES,
    OK,
    SCORING_ERROR,
    BatchSummary,
    ResultSink,
    already_done,
    finish_summary,
    input_error_row,
    is_table,
    load_detector,
    make_progress,
    prepare_run,
    resume_key,
    row_columns,
    rows_to_arrow,
    score_documents,
)
from detector.documents import Document, DocumentError, read_input, text_document

# Status of an input skipped by --resume: travels from the reader to the driver, never written.
RESUMED = "__resumed__"
# Reading is light next to the LM pass; reader tasks reserve no CPU so they are never starved by
# actors that hold every CPU of the cluster (which would deadlock a 2-CPU machine).
READ_CPUS = 0.0
READ_BATCH = 16  # about this many input paths per reader task (one block each)
_PRE_COLUMNS = ("path", "text", "sha256", "warnings", "status", "error")


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the Ray engine needs Ray: pip install -r requirements-scale.txt") from e
    return ray


def _pre_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("text", pa.string()), ("sha256", pa.string()),
                      ("warnings", pa.list_(pa.string())), ("status", pa.string()), ("error", pa.string())])


def _record(name: str, doc: Document | DocumentError, done: dict[str, dict[str, str]]) -> dict[str, Any]:
    """One input as a plain record between the reader and the scorer (status None = to be scored)."""
    if isinstance(doc, DocumentError):
        return {"path": name, "status": doc.kind, "error": doc.message}
    if already_done(done.get(resume_key(name)), doc.sha256):
        return {"path": name, "status": RESUMED, "sha256": doc.sha256}
    return {"path": name, "text": doc.text, "sha256": doc.sha256, "warnings": list(doc.warnings)}


def read_paths_batch(batch: Any, done: dict[str, dict[str, str]] | None = None) -> Any:
    """Ray task: read a batch of input paths (files -> one record, tables -> one per record).

    ``done`` maps ``resume_key`` to the previous ``{"status", "sha256"}`` of finished inputs, so the
    resume rule (``already_done``) is applied where the content hash is computed, without shipping text back.
    """
    import pyarrow as pa

    records = [_record(name, doc, done or {}) for path in batch.column("path").to_pylist()
               for name, doc in read_input(path)]
    return pa.Table.from_pylist(records, schema=_pre_schema())


class DetectorActor:
    """A Ray Data actor holding one loaded detector; turns records (or a user's table) into result rows.

    Loaded exactly as the local engine loads it (``detector.batch.load_detector``). ``threads`` pins
    torch's intra-op threads to the CPUs Ray reserved for the actor, so actors do not oversubscribe.
    With ``text_column`` set it works on arbitrary user batches (``score_dataset``): it adds the result
    columns to them instead of returning batch rows.
    """

    def __init__(self, bundle: str | None = None, lm: str | None = None, dtype: str | None = None,
                 prior: float | None = None, target_fpr: float | None = None, batch_size: int = 8,
                 threads: int | None = None, text_column: str | None = None, id_column: str | None = None) -> None:
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.det = load_detector(bundle=bundle, lm=lm, dtype=dtype, prior=prior, target_fpr=target_fpr)
        self.feature_names = list(self.det.feature_names)
        self.columns = row_columns(self.feature_names)
        self.batch_size = batch_size
        self.text_column, self.id_column = text_column, id_column

    def rows(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Result rows for records, in order: error rows for unreadable inputs, scores for the rest."""
        out: list[dict[str, Any] | None] = [None] * len(records)
        todo: list[tuple[int, Document]] = []
        for i, rec in enumerate(records):
            if rec.get("status") == RESUMED:
                out[i] = {"path": rec["path"], "status": RESUMED, "sha256": rec.get("sha256")}
            elif rec.get("status"):
                out[i] = input_error_row(rec["path"], DocumentError(rec["status"], rec.get("error") or ""),
                                         self.feature_names)
            else:
                todo.append((i, Document(rec["path"], rec["text"], list(rec.get("warnings") or []),
                                         rec.get("sha256") or "")))
        todo.sort(key=lambda item: len(item[1].text))  # similar lengths per model batch: less padding
        scored = score_documents(self.det, [doc for _, doc in todo], self.feature_names, self.batch_size)
        for (i, _), row in zip(todo, scored):
            out[i] = row
        return [r for r in out if r is not None]

    def __call__(self, batch: Any) -> Any:
        if self.text_column is None:
            return rows_to_arrow(self.rows(batch.to_pylist()), self.columns)
        return self._add_results(batch)

    def _add_results(self, batch: Any) -> Any:
        texts = batch.column(self.text_column).to_pylist()
        ids = batch.column(self.id_column).to_pylist() if self.id_column else [None] * len(texts)
        records = []
        for i, (text, rid) in enumerate(zip(texts, ids)):
            name = str(rid) if rid is not None else f"row {i} of this batch"
            try:
                doc: Document | DocumentError = text_document(name, text)
            except DocumentError as e:
                doc = e
            records.append(_record(name, doc, {}))
        result = rows_to_arrow(self.rows(records), self.columns)
        for column in self.columns:
            if column in ("path", "sha256"):
                continue
            name = f"detector_{column}" if column in batch.column_names else column
            batch = batch.append_column(name, result.column(column))
        return batch


def _plan(ray: Any, workers: int | None, cpus_per_worker: float | None) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor): one GPU per actor when the cluster has GPUs."""
    resources = ray.cluster_resources()
    cpus = float(cpus_per_worker or 1)
    gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    if workers is None:
        by_cpu = int(resources.get("CPU", 1) // cpus)
        workers = max(1, min(by_cpu, int(resources["GPU"])) if gpus else by_cpu)
    return workers, cpus, gpus


def _init_ray(ray: Any, address: str | None, workers: int | None, cpus_per_worker: float | None) -> bool:
    """Join ``address`` or start a local Ray sized for the actors; True if this call started it."""
    if ray.is_initialized():
        return False
    env = {k: v for k, v in os.environ.items() if k.startswith("DETECTOR_") or k in ("HF_HUB_OFFLINE",
                                                                                    "TRANSFORMERS_OFFLINE")}
    runtime_env = {"env_vars": env} if env else None
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level=logging.WARNING)
    else:
        needed = int((workers or 1) * float(cpus_per_worker or 1) + 0.999)
        ray.init(num_cpus=max(os.cpu_count() or 1, needed), include_dashboard=False, runtime_env=runtime_env,
                 log_to_driver=False, logging_level=logging.WARNING)
    return True


def _quiet(ray: Any) -> None:
    """Our tqdm bar is the progress indication; Ray Data's own bars and plan logs would garble it."""
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")  # read by Ray Data when it configures its loggers
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False


def _actor_pool(ray: Any, ds: Any, workers: int, cpus: float, gpus: float, batch_size: int,
                chunk: int | None = None, **actor_kwargs: Any) -> Any:
    return ds.map_batches(
        DetectorActor, batch_format="pyarrow", batch_size=chunk or batch_size * CHUNK_BATCHES,
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus, num_gpus=gpus or None,
        fn_constructor_kwargs=dict(actor_kwargs, batch_size=batch_size, threads=max(1, int(cpus))))


def score_paths_ray(paths: Sequence[str | os.PathLike], out: Path | str | None, *, recursive: bool = False,
                    batch_size: int = 8, resume: bool = False, progress: bool = True, bundle: str | None = None,
                    lm: str | None = None, dtype: str | None = None, prior: float | None = None,
                    target_fpr: float | None = None, workers: int | None = None,
                    cpus_per_worker: float | None = None, address: str | None = None) -> BatchSummary:
    """The batch command on Ray: same inputs, rows, resume and durability as ``score_paths``.

    Inputs are a Ray Dataset of paths, read by Ray tasks and scored by ``workers`` actors; the driver
    iterates the finished batches and writes each one durably as it arrives.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ray = _ray()
    out, inputs = prepare_run(paths, out, recursive, resume)
    dtype = dtype or os.environ.get("DETECTOR_DTYPE") or None  # the driver's choice holds on remote nodes too
    sink = ResultSink(out, None, resume)
    summary = BatchSummary(out=str(out) if out is not None else None, notes=list(sink.notes), engine="ray")
    names: list[str] = []
    started = False
    bar = None
    try:
        started = _init_ray(ray, address, workers, cpus_per_worker)
        _quiet(ray)
        n, cpus, gpus = _plan(ray, workers, cpus_per_worker)
        summary.engine = f"ray ({n} worker(s) x {cpus:g} CPU{' + 1 GPU' if gpus else ''})"
        done = {k: {"status": OK, "sha256": sha} for k, sha in sink.done_hashes().items()} if resume else {}
        bar = make_progress(None if any(is_table(p) for p in inputs) else len(inputs), progress)
        if inputs:
            # Enough blocks that every actor gets work; for a small run of files (count known), batches small
            # enough to be shared by all actors rather than taken whole by the first one.
            blocks = min(len(inputs), max(4 * n, -(-len(inputs) // READ_BATCH)))
            chunk = batch_size * CHUNK_BATCHES
            if not any(is_table(p) for p in inputs):
                chunk = max(1, min(chunk, -(-len(inputs) // n)))
            ds = ray.data.from_items([{"path": str(p)} for p in inputs], override_num_blocks=blocks)
            ds = ds.map_batches(read_paths_batch, batch_format="pyarrow", batch_size=None,
                                num_cpus=READ_CPUS, fn_kwargs={"done": done})
            ds = _actor_pool(ray, ds, n, cpus, gpus, batch_size, chunk, bundle=bundle, lm=lm, dtype=dtype,
                             prior=prior, target_fpr=target_fpr)
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                rows = batch.to_pylist()
                names += [r["path"] for r in rows]
                new = [r for r in rows if r["status"] != RESUMED]
                sink.write(new)  # durable (fsync) before the next batch is taken
                summary.n_skipped_resume += len(rows) - len(new)
                summary.n_scored += sum(r["status"] in (OK, SCORING_ERROR) for r in new)
                bar.update(len(rows))
        sink.finish()
    finally:
        if bar is not None:
            bar.close()
        sink.close()
        if started:
            ray.shutdown()
    return finish_summary(summary, sink, sorted(names))


def score_dataset(ds: Any, *, text_column: str = "text", id_column: str | None = None, bundle: str | None = None,
                  lm: str | None = None, dtype: str | None = None, workers: int | None = None,
                  cpus_per_worker: float = 1, batch_size: int = 8, prior: float | None = None,
                  target_fpr: float | None = None) -> Any:
    """Score the ``text_column`` of a Ray Dataset with ``workers`` detector actors; returns a lazy Dataset.

    Every input row comes back with the result columns added: ``status``, ``prob_ai``, ``label``,
    ``n_tokens``, ``lang``, ``max_segment_prob_ai``, ``error``, ``warnings``, ``precision`` and the
    features, the same values as the batch command's rows (a result column whose name the input
    already uses is added as ``detector_<name>``). A null, non-string or blank text gets an error
    status instead of stopping the job; ``id_column`` only names rows in error messages.
    """
    ray = _ray()
    if not ray.is_initialized():
        ray.init(log_to_driver=False, logging_level=logging.WARNING)
    n, cpus, gpus = _plan(ray, workers, cpus_per_worker)
    dtype = dtype or os.environ.get("DETECTOR_DTYPE") or None
    return _actor_pool(ray, ds, n, cpus, gpus, batch_size, bundle=bundle, lm=lm, dtype=dtype, prior=prior,
                       target_fpr=target_fpr, text_column=text_column, id_column=id_column)


__all__ = ["DetectorActor", "read_paths_batch", "score_dataset", "score_paths_ray"]
