"""Scale-out speed: texts/s of the local batch engine vs the Ray engine with 1 and 2 workers.

Why: the README's "Scaling out" section quotes what an added worker buys on a real machine.
Writes ``--n-files`` (default 48) deterministic essay-length .txt files to a temporary folder
and scores them with the shipped bundle (embedded SmolLM2) through the real batch paths:
``detector.batch.score_paths`` in this process (torch on every core), and
``detector.distributed.score_paths_ray`` on a local Ray (``ray.init(num_cpus=<cores>)``) with
N actors of ``--cpus-per-worker`` CPUs each. The Ray wall time includes starting the actors
and loading one model per actor (what a user waits for); the local figure is given both without
and with its one model load + warm-up, for a like-for-like comparison.

Run one configuration per call (``--engines local`` / ``ray1`` / ``ray2``) to keep each run
short on a shared machine, or all at once (default). Last line per engine:
``<engine>: <texts/s> texts/s``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (else platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _timed_sink(distributed) -> list[tuple[float, int]]:
    """Record (time, rows) of every batch the Ray driver writes: when the first results arrive."""
    marks: list[tuple[float, int]] = []
    original = distributed.ResultSink.write

    def write(self, rows):
        marks.append((time.perf_counter(), len(rows)))
        return original(self, rows)

    distributed.ResultSink.write = write
    return marks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-files", type=int, default=48)
    ap.add_argument("--bundle", default=None, help="bundle name or path (default: the shipped one)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--cpus-per-worker", type=float, default=1)
    ap.add_argument("--dtype", default=None, help="auto | float32 | bfloat16 (default: $DETECTOR_DTYPE, else auto)")
    ap.add_argument("--engines", default="local,ray1,ray2", help="comma-separated: local, ray1, ray2, ...")
    a = ap.parse_args(argv)

    from throughput import build_texts, cpu_flags

    flags = cpu_flags()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; "
          + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "essays"
        folder.mkdir()
        for i, text in enumerate(build_texts(a.n_files)):
            (folder / f"essay_{i:04d}.txt").write_text(text, encoding="utf-8")
        for k, engine in enumerate(engines):
            out = Path(tmp) / f"results_{k}.jsonl"
            if engine == "local":
                from detector.batch import load_detector, score_paths

                t_load = time.perf_counter()
                det = load_detector(bundle=a.bundle, dtype=a.dtype)
                det.score_many(build_texts(2))  # warm-up
                t_load = time.perf_counter() - t_load
                import torch

                t0 = time.perf_counter()
                summary = score_paths(det, [folder], out, batch_size=a.batch_size, progress=False)
                seconds = time.perf_counter() - t0
                print(f"local: precision {summary.precision}, torch threads {torch.get_num_threads()}, "
                      f"{summary.n_files} texts in {seconds:.1f} s; with the model load + warm-up ({t_load:.1f} s): "
                      f"{summary.n_files / (seconds + t_load):.2f} texts/s")
                print(f"local: {summary.n_files / seconds:.2f} texts/s")
                continue
            workers = int(engine.removeprefix("ray"))
            import ray

            from detector import distributed

            if not ray.is_initialized():
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            marks = _timed_sink(distributed)
            t0 = time.perf_counter()
            summary = distributed.score_paths_ray([folder], out, batch_size=a.batch_size, progress=False,
                                                  bundle=a.bundle, dtype=a.dtype, workers=workers,
                                                  cpus_per_worker=a.cpus_per_worker)
            seconds = time.perf_counter() - t0
            first = marks[0][0] - t0
            print(f"{engine}: {summary.engine}, precision {summary.precision}, {summary.n_files} texts in "
                  f"{seconds:.1f} s wall incl. actor start + model load ({len(marks)} batches, first after "
                  f"{first:.1f} s)")
            print(f"{engine}: {summary.n_files / seconds:.2f} texts/s")
            assert summary.status_counts.get("ok") == summary.n_files, summary.status_counts


if __name__ == "__main__":
    main()
