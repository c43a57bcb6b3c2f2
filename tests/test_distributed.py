"""The Ray engine (detector.distributed) against the local engine, on a real tiny bundle and a local 2-CPU Ray.

Why: both engines must write the same rows (one per input, same statuses, labels and
probabilities), resume the same way and never stop on a bad file or text. Ray is an optional
extra: without it this module is skipped.
"""

from __future__ import annotations

import functools
import json
import random
import re
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from detector import cli, distributed  # noqa: E402
from detector.batch import load_csv_rows, score_paths  # noqa: E402
from synthetic import AI_SENTENCES, human_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module (starting Ray costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def _mixed(root: Path) -> list[Path]:
    """A folder of good and bad files plus a JSON Lines table with a bad line and a null text."""
    folder = root / "essays"
    folder.mkdir(parents=True)
    (folder / "ai.txt").write_text(" ".join(AI_SENTENCES * 2))
    for i in range(4):
        (folder / f"human{i}.md").write_text(human_text(random.Random(i)))
    (folder / "latin1.txt").write_bytes(("Café naïve résumé. " + human_text(random.Random(8))).encode("cp1252"))
    (folder / "short.txt").write_text("Only a few words.")
    (folder / "empty.txt").write_text("  \n")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (folder / "broken.docx").write_bytes(b"not a zip file at all")
    (folder / "dangling.txt").symlink_to(folder / "missing-target.txt")
    table = root / "posts.jsonl"
    table.write_text("\n".join([json.dumps({"id": "p1", "text": human_text(random.Random(21))}),
                                "{not json",
                                json.dumps({"id": "p3", "text": None}),
                                json.dumps({"id": "p4", "text": " ".join(AI_SENTENCES)})]) + "\n")
    return [folder, table]


def _rows(path: Path) -> dict[str, dict]:
    rows = load_csv_rows(path) if path.suffix == ".csv" else [json.loads(x) for x in path.read_text().splitlines()]
    return {r["path"]: r for r in rows}


# --- no Ray needed: the reader and the actor class are plain Python --------------------------------------


def test_reader_and_actor_build_the_local_rows(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """The Ray pipeline's two steps, called in-process, give exactly the local engine's rows."""
    import pyarrow as pa

    inputs = _mixed(tmp_path)
    det = distributed.load_detector(bundle=str(tiny_bundle_dir), dtype="float32")
    local = score_paths(det, inputs, None, progress=False)
    paths = [str(p) for p in sorted((tmp_path / "essays").iterdir())] + [str(inputs[1])]
    records = distributed.read_paths_batch(pa.table({"path": paths}))
    actor = distributed.DetectorActor(bundle=str(tiny_bundle_dir), dtype="float32")
    rows = {r["path"]: r for r in actor(records).to_pylist()}
    expected = {r["path"]: r for r in local.rows}
    assert sorted(rows) == sorted(expected) and len(rows) == 15
    for path, row in expected.items():
        assert list(rows[path]) == list(row), path  # same columns, same order
        for column, value in row.items():
            if isinstance(value, float):
                assert rows[path][column] == pytest.approx(value, rel=1e-6, abs=1e-9), (path, column)
            else:
                assert rows[path][column] == value, (path, column)

    # resume: an input whose previous row is ok with the same hash becomes a marker, never a row
    ok = next(r for r in local.rows if r["status"] == "ok")
    done = {distributed.resume_key(ok["path"]): {"status": "ok", "sha256": ok["sha256"]}}
    again = distributed.read_paths_batch(pa.table({"path": paths}), done=done).to_pylist()
    assert [r["status"] for r in again if r["path"] == ok["path"]] == [distributed.RESUMED]


# --- the CLI on a local Ray ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_engine_matches_local_and_resumes(local_ray, tiny_bundle_dir: Path, tmp_path: Path, capsys) -> None:
    inputs = [str(p) for p in _mixed(tmp_path)]
    common = ["--bundle", str(tiny_bundle_dir), "--no-progress", "--dtype", "float32"]
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.csv"
    assert cli.main(["score", *inputs, "--out", str(local_out), *common]) == 0
    capsys.readouterr()
    assert cli.main(["score", *inputs, "--out", str(ray_out), "--engine", "ray", "--workers", "2", *common]) == 0
    err = capsys.readouterr().err
    assert "engine ray (2 worker(s) x 1 CPU), model precision float32" in err
    assert not ray_out.with_name("ray.csv.partial.jsonl").exists()  # journal dropped after a clean finish

    local, dist = _rows(local_out), _rows(ray_out)
    assert len(dist) == len(local) == 15  # 11 files + 4 table records, one row each
    assert sorted(dist) == sorted(local)
    assert {p: r["status"] for p, r in dist.items()} == {p: r["status"] for p, r in local.items()}
    assert {p: r["label"] for p, r in dist.items()} == {p: r["label"] for p, r in local.items()}
    for path, row in local.items():
        if row["prob_ai"] is None:
            assert dist[path]["prob_ai"] is None, path
        else:
            assert abs(dist[path]["prob_ai"] - row["prob_ai"]) <= 1e-3, path
        assert dist[path]["sha256"] == row["sha256"] and dist[path]["precision"] == row["precision"]
    statuses = {Path(p).name: r["status"] for p, r in dist.items()}
    assert statuses["image.txt"] == "binary" and statuses["broken.docx"] == "corrupt_document"
    assert statuses["posts.jsonl#1"] == statuses["posts.jsonl#p3"] == "bad_record"
    assert statuses["posts.jsonl#p1"] == statuses["posts.jsonl#p4"] == "ok"

    # --resume: nothing is scored again and no row is added
    assert cli.main(["score", *inputs, "--out", str(ray_out), "--engine", "ray", "--workers", "2", "--resume",
                     *common]) == 0
    n_ok = sum(r["status"] == "ok" for r in local.values())
    assert n_ok == 9 and f"0 scored now, {n_ok} already done (resumed)" in capsys.readouterr().err
    assert _rows(ray_out) == dist


def test_ray_engine_bad_bundle_fails_fast(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("hello there")
    code = cli.main(["score", str(tmp_path), "--engine", "ray", "--bundle", str(tmp_path / "nope"), "--no-progress"])
    assert code == 1
    assert "could not load the detector" in capsys.readouterr().err


def test_ray_options_need_the_ray_engine(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("hello there")
    assert cli.main(["score", str(tmp_path), "--workers", "2"]) == 2
    assert "--engine ray" in capsys.readouterr().err


# --- the Python API -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_score_dataset_on_a_parquet_table(local_ray, tiny_bundle_dir: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [" ".join(AI_SENTENCES * 2), human_text(random.Random(3)), None, "   "]
    pq.write_table(pa.table({"doc": ["a", "b", "c", "d"], "text": texts, "label": ["ai", "human", "?", "?"]}),
                   tmp_path / "t.parquet")
    ds = ray.data.read_parquet(str(tmp_path / "t.parquet"))
    out = distributed.score_dataset(ds, id_column="doc", bundle=str(tiny_bundle_dir), workers=1)
    rows = {r["doc"]: r for r in out.take_all()}
    assert set(rows) == {"a", "b", "c", "d"}
    assert rows["a"]["label"] == "ai" and rows["a"]["detector_label"] in ("ai", "human", "uncertain")
    assert rows["a"]["status"] == rows["b"]["status"] == "ok" and 0 <= rows["a"]["prob_ai"] <= 1
    assert rows["c"]["status"] == "bad_record" and "c: the text is missing" in rows["c"]["error"]
    assert rows["d"]["status"] == "empty" and rows["d"]["prob_ai"] is None
    assert "path" not in rows["a"] and rows["a"]["precision"] in ("float32", "bfloat16")


@pytest.mark.slow
def test_readme_score_dataset_example_runs(local_ray, tiny_bundle_dir: Path, monkeypatch, capsys) -> None:
    """Executes the README's score_dataset example (on the tiny bundle instead of the shipped one)."""
    block = README.split("score-dataset-example", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    monkeypatch.setattr(distributed, "score_dataset",
                        functools.partial(distributed.score_dataset, bundle=str(tiny_bundle_dir)))
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3, lines
    for line in lines:
        assert re.fullmatch(r"\d (ai|human|uncertain|insufficient_text|unsupported_language|error) (-|[01]\.\d\d)",
                            line), line
    assert lines[2] == "3 error -"
