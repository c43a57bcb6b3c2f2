"""Tests for detector.batch and detector.cli with a small deterministic fake detector.

The fake computes a real (if silly) probability from character statistics, so every file
gets a different row; end-to-end tests with the real Detector live elsewhere.
"""

from __future__ import annotations

import csv
import json
import math
import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from detector import batch, cli
from detector.batch import BASE_COLUMNS, OutputExistsError, iter_inputs, score_paths
from detector.score import AI, ERROR, HUMAN, INSUFFICIENT_TEXT, UNCERTAIN, Score, Segment

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


class FakeDetector:
    """Duck-typed stand-in for detector.detector.Detector: P(AI) from mean word length."""

    feature_names = ["mean_word_len", "vowel_ratio", "n_tokens"]

    def __init__(self, sleep: float = 0.0, fail_marker: str | None = None, error_marker: str | None = None) -> None:
        self.sleep = sleep
        self.fail_marker = fail_marker
        self.error_marker = error_marker
        self.scored: list[str] = []
        self.calls: list[int] = []

    def score_many(self, texts: list[str], batch_size: int = 8) -> list[Score]:
        self.calls.append(len(texts))
        if self.fail_marker and any(self.fail_marker in t for t in texts):
            raise RuntimeError("fake detector exploded")
        out = []
        for text in texts:
            if self.sleep:
                time.sleep(self.sleep)
            self.scored.append(text)
            out.append(self._score(text))
        return out

    def _score(self, text: str) -> Score:
        if self.error_marker and self.error_marker in text:
            return Score(None, ERROR, error="fake model error")
        words = text.split()
        letters = [c for c in text.lower() if c.isalpha()]
        mean_len = sum(map(len, words)) / max(1, len(words))
        vowels = sum(c in "aeiou" for c in letters) / max(1, len(letters))
        features = {"mean_word_len": mean_len, "vowel_ratio": vowels, "n_tokens": float(len(words))}
        if len(words) < 3:
            return Score(None, INSUFFICIENT_TEXT, n_tokens=len(words), features=features)
        prob = 1 / (1 + math.exp(-(mean_len - 5.0) * 2))
        label = AI if prob >= 0.7 else HUMAN if prob <= 0.3 else UNCERTAIN
        return Score(prob, label, n_tokens=len(words), lang="en", features=features,
                     segments=[Segment(0, len(text), min(1.0, prob + 0.05))], warnings=["fake_warning"])


def essay(i: int) -> str:
    """Distinct texts with different word lengths, so probabilities differ per file."""
    word = "w" * (2 + i % 7)
    return " ".join(f"{word}{j}" for j in range(20 + i))


def make_folder(root: Path, n: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        p = root / f"essay{i:02d}.txt"
        p.write_text(essay(i), encoding="utf-8")
        files.append(p)
    return files


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Good files of every format plus one of each kind of bad file."""
    folder = tmp_path / "essays"
    folder.mkdir()
    (folder / "a_good.txt").write_text(essay(1), encoding="utf-8")
    (folder / "b_notes.md").write_text("# Notes\n\n" + essay(2), encoding="utf-8")
    (folder / "c_page.html").write_text(f"<html><body><p>{essay(3)}</p><script>x()</script></body></html>",
                                        encoding="utf-8")
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph(essay(4))
    document.save(str(folder / "d_word.docx"))
    (folder / "e_latin.txt").write_bytes(("Le caf\u00e9 cr\u00e8me est tr\u00e8s \u00e9l\u00e9gant. " * 6)
                                         .encode("cp1252"))
    (folder / "f_empty.txt").write_bytes(b"")
    (folder / "g_image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (folder / "h_link.txt").symlink_to(folder / "missing_target.txt")
    (folder / "i_corrupt.docx").write_bytes(os.urandom(300))
    (folder / "j_ignored.xyz").write_text("not a supported extension", encoding="utf-8")
    (folder / "~$lock.docx").write_bytes(b"lock")
    sub = folder / "sub"
    sub.mkdir()
    (sub / "k_nested.txt").write_text(essay(5), encoding="utf-8")
    return folder


EXPECTED_STATUS = {
    "a_good.txt": "ok", "b_notes.md": "ok", "c_page.html": "ok", "d_word.docx": "ok", "e_latin.txt": "ok",
    "f_empty.txt": "empty", "g_image.txt": "binary", "h_link.txt": "broken_symlink",
    "i_corrupt.docx": "corrupt_document",
}


# --- inputs --------------------------------------------------------------------------------


def test_iter_inputs(mixed_folder: Path, tmp_path: Path) -> None:
    flat = [p.name for p in iter_inputs([mixed_folder], recursive=False)]
    assert flat == sorted(EXPECTED_STATUS)
    deep = [p.name for p in iter_inputs([mixed_folder], recursive=True)]
    assert deep == sorted([*EXPECTED_STATUS, "k_nested.txt"])
    # Files named directly are always included, even unsupported or missing ones; no duplicates.
    direct = iter_inputs([mixed_folder / "j_ignored.xyz", tmp_path / "nope.txt", mixed_folder,
                          mixed_folder / "a_good.txt"], recursive=False)
    names = [p.name for p in direct]
    assert "j_ignored.xyz" in names and "nope.txt" in names
    assert names.count("a_good.txt") == 1
    assert iter_inputs([mixed_folder], False) == iter_inputs([mixed_folder], False)


# --- one row per file ----------------------------------------------------------------------


def test_mixed_folder_one_row_per_file(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    det = FakeDetector()
    summary = score_paths(det, [mixed_folder], out, progress=False)
    rows = read_jsonl(out)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert len(rows) == len(by_name) == len(EXPECTED_STATUS)
    assert {n: r["status"] for n, r in by_name.items()} == EXPECTED_STATUS
    for name, row in by_name.items():
        assert list(row)[:len(BASE_COLUMNS)] == list(BASE_COLUMNS)
        if row["status"] == "ok":
            assert 0.0 <= row["prob_ai"] <= 1.0 and row["error"] is None and len(row["sha256"]) == 64
            assert row["mean_word_len"] is not None and row["feature_n_tokens"] == row["n_tokens"]
            assert "fake_warning" in row["warnings"]
        else:
            assert row["label"] == ERROR and row["prob_ai"] is None and name in row["error"]
    assert "decoded_as_cp1252" in by_name["e_latin.txt"]["warnings"]
    assert len({r["prob_ai"] for r in rows if r["status"] == "ok"}) > 1  # the fake really scores
    assert len(det.scored) == 5
    assert summary.n_scored == 5 and summary.n_skipped_resume == 0
    assert summary.status_counts["ok"] == 5 and summary.status_counts["binary"] == 1
    assert {Path(p).name for p, _, _ in summary.failures} == {n for n, s in EXPECTED_STATUS.items() if s != "ok"}
    assert [Path(r["path"]).name for r in summary.rows] == sorted(EXPECTED_STATUS)
    text = summary.format()
    assert "5 scored now" in text and "binary" in text


def test_batches_across_files_sorted_by_length(tmp_path: Path) -> None:
    make_folder(tmp_path / "in", 10)
    det = FakeDetector()
    score_paths(det, [tmp_path / "in"], tmp_path / "r.jsonl", batch_size=2, progress=False)
    assert det.calls == [8, 2]  # chunks of batch_size * CHUNK_BATCHES texts across files
    assert [len(t) for t in det.scored] == sorted(len(t) for t in det.scored)


def test_failing_batch_falls_back_to_single_texts(tmp_path: Path) -> None:
    files = make_folder(tmp_path / "in", 5)
    files[2].write_text(essay(2) + " EXPLODE", encoding="utf-8")
    files[3].write_text(essay(3) + " MODELERROR", encoding="utf-8")
    det = FakeDetector(fail_marker="EXPLODE", error_marker="MODELERROR")
    summary = score_paths(det, [tmp_path / "in"], tmp_path / "r.jsonl", progress=False)
    rows = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "r.jsonl")}
    assert rows["essay02.txt"]["status"] == "scoring_error"
    assert "fake detector exploded" in rows["essay02.txt"]["error"]
    assert rows["essay03.txt"]["status"] == "scoring_error" and rows["essay03.txt"]["error"] == "fake model error"
    assert all(rows[f"essay0{i}.txt"]["status"] == "ok" for i in (0, 1, 4))
    assert summary.status_counts == {"ok": 3, "scoring_error": 2}


def test_memory_only_without_out(tmp_path: Path) -> None:
    make_folder(tmp_path / "in", 3)
    summary = score_paths(FakeDetector(), [tmp_path / "in"], None, progress=False)
    assert len(summary.rows) == 3 and summary.out is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


# --- CSV -----------------------------------------------------------------------------------


def test_csv_output(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    score_paths(FakeDetector(), [mixed_folder], out, progress=False)
    header, rows = read_csv(out)
    assert header == [*BASE_COLUMNS, "mean_word_len", "vowel_ratio", "feature_n_tokens"]
    assert len(rows) == len(EXPECTED_STATUS)
    latin = next(r for r in rows if r["path"].endswith("e_latin.txt"))
    assert latin["warnings"] == "decoded_as_cp1252;fake_warning"
    empty = next(r for r in rows if r["path"].endswith("f_empty.txt"))
    assert empty["status"] == "empty" and empty["prob_ai"] == ""
    assert not (tmp_path / "results.csv.partial.jsonl").exists()  # journal removed after a clean finish


def test_csv_resume_from_finished_csv(tmp_path: Path) -> None:
    files = make_folder(tmp_path / "in", 4)
    out = tmp_path / "results.csv"
    score_paths(FakeDetector(), [tmp_path / "in"], out, progress=False)
    assert not (tmp_path / "results.csv.partial.jsonl").exists()
    files[0].write_text(essay(9), encoding="utf-8")  # changed content: must be re-scored
    for i in (4, 5):  # new files
        (tmp_path / "in" / f"essay{i:02d}.txt").write_text(essay(i), encoding="utf-8")
    det = FakeDetector()
    summary = score_paths(det, [tmp_path / "in"], out, resume=True, progress=False)
    assert sorted(det.scored) == sorted([essay(9), essay(4), essay(5)])
    _, rows = read_csv(out)
    assert [Path(r["path"]).name for r in rows] == [f"essay{i:02d}.txt" for i in range(6)]
    assert summary.n_skipped_resume == 3
    assert float(rows[1]["prob_ai"]) == pytest.approx(summary.rows[1]["prob_ai"])


# --- resume --------------------------------------------------------------------------------


def test_refuses_to_overwrite_without_resume(tmp_path: Path) -> None:
    make_folder(tmp_path / "in", 2)
    for name in ("r.jsonl", "r.csv"):
        out = tmp_path / name
        out.write_text("precious\n", encoding="utf-8")
        with pytest.raises(OutputExistsError, match="--resume"):
            score_paths(FakeDetector(), [tmp_path / "in"], out, progress=False)
        assert out.read_text(encoding="utf-8") == "precious\n"
    (tmp_path / "r2.csv.partial.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        score_paths(FakeDetector(), [tmp_path / "in"], tmp_path / "r2.csv", progress=False)


@pytest.mark.parametrize("name", ["notes.jsonl", "notes.csv"])
def test_resume_refuses_foreign_file(tmp_path: Path, name: str) -> None:
    make_folder(tmp_path / "in", 2)
    out = tmp_path / name
    out.write_text("my own notes, no trailing newline", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="not a results file"):
        score_paths(FakeDetector(), [tmp_path / "in"], out, resume=True, progress=False)
    assert out.read_text(encoding="utf-8") == "my own notes, no trailing newline"


def test_resume_after_simulated_kill_with_torn_line(tmp_path: Path) -> None:
    make_folder(tmp_path / "in", 6)
    out = tmp_path / "r.jsonl"
    score_paths(FakeDetector(), [tmp_path / "in"], out, progress=False)
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    # As if killed while writing the 4th row: three whole rows and half a line.
    out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2], encoding="utf-8")
    det = FakeDetector()
    summary = score_paths(det, [tmp_path / "in"], out, resume=True, progress=False)
    assert sorted(det.scored) == sorted(essay(i) for i in (3, 4, 5))  # done files are not re-scored
    rows = read_jsonl(out)
    assert [Path(r["path"]).name for r in rows] == [f"essay{i:02d}.txt" for i in range(6)]
    assert summary.n_skipped_resume == 3 and summary.n_scored == 3
    assert any("incomplete last line" in n for n in summary.notes)


def test_resume_rescores_changed_and_failed_files(tmp_path: Path) -> None:
    files = make_folder(tmp_path / "in", 4)
    out = tmp_path / "r.jsonl"
    files[3].write_bytes(b"")
    score_paths(FakeDetector(), [tmp_path / "in"], out, progress=False)
    files[1].write_text(essay(7), encoding="utf-8")
    files[3].write_text(essay(3), encoding="utf-8")  # was empty, now fixed
    det = FakeDetector()
    score_paths(det, [tmp_path / "in"], out, resume=True, progress=False)
    assert sorted(det.scored) == sorted([essay(7), essay(3)])
    rows = read_jsonl(out)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    # A second resume with nothing changed scores nothing and keeps one row per file.
    det2 = FakeDetector()
    assert score_paths(det2, [tmp_path / "in"], out, resume=True, progress=False).n_skipped_resume == 4
    assert det2.scored == [] and read_jsonl(out) == rows


def test_resume_keeps_rows_of_other_files(tmp_path: Path) -> None:
    make_folder(tmp_path / "a", 2)
    make_folder(tmp_path / "b", 2)
    out = tmp_path / "r.jsonl"
    score_paths(FakeDetector(), [tmp_path / "a"], out, progress=False)
    score_paths(FakeDetector(), [tmp_path / "b"], out, resume=True, progress=False)
    assert len(read_jsonl(out)) == 4


# --- real SIGKILL --------------------------------------------------------------------------

RUNNER = textwrap.dedent("""
    import sys, types
    from pathlib import Path
    # Import only detector.batch: the package __init__ pulls in torch, which this test does not need.
    pkg = types.ModuleType("detector")
    pkg.__path__ = [{repo!r} + "/detector"]
    sys.modules["detector"] = pkg
    sys.path[:0] = [{repo!r}, {tests!r}]
    from test_batch import FakeDetector
    from detector.batch import score_paths
    score_paths(FakeDetector(sleep=0.2), [sys.argv[1]], Path(sys.argv[2]), batch_size=1, progress=False)
""")


def _run_and_kill(tmp_path: Path, folder: Path, out: Path, journal: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(repo=str(REPO), tests=str(TESTS)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_bytes().count(b"\n") >= 4:  # first chunk is durable
                break
            time.sleep(0.02)
        time.sleep(0.3)  # now somewhere inside the next chunk
        assert proc.poll() is None, f"runner ended early: {proc.stderr.read().decode() if proc.stderr else ''}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_sigkill_then_resume(tmp_path: Path, suffix: str) -> None:
    n = 16
    folder = tmp_path / "in"
    make_folder(folder, n)
    out = tmp_path / f"results{suffix}"
    journal = out if suffix == ".jsonl" else tmp_path / "results.csv.partial.jsonl"
    _run_and_kill(tmp_path, folder, out, journal)

    done_rows, _ = batch.load_jsonl_rows(journal, repair=False)
    assert 4 <= len(done_rows) < n
    if suffix == ".csv":  # the CSV left by the killed run is complete and parseable
        header, csv_rows = read_csv(out)
        assert header == [*BASE_COLUMNS, "mean_word_len", "vowel_ratio", "feature_n_tokens"]
        assert len(csv_rows) >= 4 and all(None not in r and r["status"] == "ok" for r in csv_rows)
        assert {r["path"] for r in csv_rows} <= {r["path"] for r in done_rows}

    with pytest.raises(OutputExistsError):
        score_paths(FakeDetector(), [folder], out, progress=False)
    det = FakeDetector()
    summary = score_paths(det, [folder], out, resume=True, progress=False)
    done = {r["path"] for r in done_rows}
    assert len(det.scored) == n - len(done)  # finished files are not scored again
    assert summary.n_skipped_resume == len(done)
    if suffix == ".jsonl":
        rows = read_jsonl(out)
    else:
        _, rows = read_csv(out)
        assert not journal.exists()
    assert sorted(Path(r["path"]).name for r in rows) == [f"essay{i:02d}.txt" for i in range(n)]
    assert all(r["status"] == "ok" and r["prob_ai"] not in (None, "") and len(r["sha256"]) == 64 for r in rows)


# --- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> FakeDetector:
    det = FakeDetector()
    monkeypatch.setattr(cli, "_load_detector", lambda args: det)
    return det


@pytest.mark.parametrize("argv", [[], ["score"], ["bogus", "x"], ["score", "x", "--batch-size", "0"],
                                  ["score", "x", "--batch-size", "two"], ["score", "x", "--nope"]])
def test_cli_bad_arguments_exit_2(argv: list[str], fake_cli: FakeDetector, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err


def test_cli_help_exits_0(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["score", "--help"]) == 0
    assert "--resume" in capsys.readouterr().out


def test_cli_table_without_out(tmp_path: Path, fake_cli: FakeDetector, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture) -> None:
    make_folder(tmp_path / "in", 3)
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["score", "in", "--no-progress"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["path", "label", "prob_ai", "n_tokens", "status"]
    assert len(lines) == 5
    assert any("empty.txt" in line and line.split()[-1] == "empty" and " - " in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no file written
    assert "3 scored now" in captured.err


def test_cli_out_refuse_and_resume(tmp_path: Path, fake_cli: FakeDetector, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    make_folder(tmp_path / "in", 3)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["score", "in", "--out", "res.csv", "--no-progress"]) == 0
    assert len(read_csv(tmp_path / "res.csv")[1]) == 3
    capsys.readouterr()
    assert cli.main(["score", "in", "--out", "res.csv", "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["score", "in", "--out", "res.csv", "--resume", "--no-progress"]) == 0
    assert len(fake_cli.scored) == 3  # nothing scored twice
    assert cli.main(["score", "in", "--resume"]) == 2  # --resume needs --out


def test_cli_missing_inputs_and_load_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    def broken_load(args):
        raise FileNotFoundError(f"no bundle named {args.bundle}")

    monkeypatch.setattr(cli, "_load_detector", broken_load)
    assert cli.main(["score", str(tmp_path / "missing.txt")]) == 1
    assert "none of the input paths exist" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text(essay(1), encoding="utf-8")
    assert cli.main(["score", str(tmp_path)]) == 1
    assert "--recursive" in capsys.readouterr().err
    assert cli.main(["score", str(tmp_path), "-r", "--bundle", "nope"]) == 1
    err = capsys.readouterr().err
    assert "could not load the detector" in err and "nope" in err


def test_cli_some_bad_files_still_exit_0(mixed_folder: Path, tmp_path: Path, fake_cli: FakeDetector) -> None:
    out = tmp_path / "r.jsonl"
    assert cli.main(["score", str(mixed_folder), str(tmp_path / "missing.txt"), "--out", str(out),
                     "--no-progress"]) == 0
    rows = {Path(r["path"]).name: r["status"] for r in read_jsonl(out)}
    assert rows["missing.txt"] == "not_found" and rows["i_corrupt.docx"] == "corrupt_document"


def test_python_m_detector_entry_point(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", ["detector", "score", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("detector", run_name="__main__", alter_sys=False)
    assert info.value.code == 0
    assert "--batch-size" in capsys.readouterr().out


def test_format_table_shortens_long_paths() -> None:
    row = {"path": "/very/" + "long/" * 30 + "essay.txt", "label": "ai", "prob_ai": 0.876, "n_tokens": 300,
           "status": "ok"}
    table = batch.format_table([row])
    assert "0.876" in table and "essay.txt" in table and all(len(line) < 120 for line in table.splitlines())


# --- precision, --dtype, all-error runs, tables, Parquet ----------------------------------------------------


class PrecisionDetector(FakeDetector):
    """The fake with a backbone precision, like Detector.precision."""

    precision = "bfloat16"


class BrokenDetector(FakeDetector):
    """A model that fails on every text."""

    def score_many(self, texts: list[str], batch_size: int = 8) -> list[Score]:
        raise RuntimeError("CUDA out of memory (fake)")


def test_precision_in_rows_and_summary(mixed_folder: Path, tmp_path: Path) -> None:
    summary = score_paths(PrecisionDetector(), [mixed_folder], tmp_path / "r.jsonl", progress=False)
    rows = {Path(r["path"]).name: r for r in read_jsonl(tmp_path / "r.jsonl")}
    assert rows["a_good.txt"]["precision"] == "bfloat16"
    assert rows["f_empty.txt"]["precision"] is None  # the model never saw an unreadable file
    assert summary.precision == "bfloat16" and "model precision bfloat16" in summary.format()
    assert "model precision" not in score_paths(FakeDetector(), [mixed_folder], None, progress=False).format()


def test_cli_dtype_is_passed_to_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    from detector import lm

    assert set(cli.DTYPE_CHOICES) <= set(lm.DTYPE_CHOICES)  # the ones --help names (without importing torch)
    seen = {}

    def fake_load(bundle=None, lm=None, dtype=None, prior=None, target_fpr=None):
        seen.update(bundle=bundle, dtype=dtype, prior=prior)
        return PrecisionDetector()

    monkeypatch.setattr(batch, "load_detector", fake_load)
    make_folder(tmp_path / "in", 2)
    assert cli.main(["score", str(tmp_path / "in"), "--dtype", "bfloat16", "--prior", "0.2", "--no-progress"]) == 0
    assert seen == {"bundle": None, "dtype": "bfloat16", "prior": 0.2}
    assert "model precision bfloat16" in capsys.readouterr().err
    assert cli.main(["score", str(tmp_path / "in"), "--dtype", "float16"]) == 2


def test_cli_all_model_failures_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(cli, "_load_detector", lambda args: BrokenDetector())
    make_folder(tmp_path / "in", 3)
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    out = tmp_path / "r.jsonl"
    assert cli.main(["score", str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == cli.EXIT_ALL_FAILED == 3
    err = capsys.readouterr().err
    assert "the model failed on every input" in err and "CUDA out of memory (fake)" in err
    assert sorted(r["status"] for r in read_jsonl(out)) == ["empty"] + ["scoring_error"] * 3  # rows still written


def test_cli_nothing_readable_exit_3_but_some_bad_files_exit_0(tmp_path: Path, fake_cli: FakeDetector,
                                                               capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "empty.txt").write_bytes(b"")
    (tmp_path / "bad" / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert cli.main(["score", str(tmp_path / "bad"), "--no-progress"]) == 3
    assert "none of the 2 input(s) could be read" in capsys.readouterr().err
    make_folder(tmp_path / "bad", 1)
    assert cli.main(["score", str(tmp_path / "bad"), "--no-progress"]) == 0


def test_table_inputs_one_row_per_record(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    jl = tmp_path / "posts.jsonl"
    jl.write_text("\n".join([json.dumps({"id": "x", "text": essay(1)}), "{oops", json.dumps({"text": essay(2)}),
                             json.dumps({"id": 7, "text": 42}), json.dumps([1, 2]), ""]) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"text": [essay(3), None, "  "]}), tmp_path / "t.parquet")
    (tmp_path / "notext.parquet").write_bytes(b"PAR1 not really")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nocol.parquet")
    out = tmp_path / "r.jsonl"
    inputs = [jl, tmp_path / "t.parquet", tmp_path / "notext.parquet", tmp_path / "nocol.parquet"]
    summary = score_paths(FakeDetector(), inputs, out, progress=False)
    rows = {Path(r["path"]).name: r for r in read_jsonl(out)}
    assert {n: r["status"] for n, r in rows.items()} == {
        "posts.jsonl#x": "ok", "posts.jsonl#1": "bad_record", "posts.jsonl#2": "ok", "posts.jsonl#7": "bad_record",
        "posts.jsonl#4": "bad_record", "t.parquet#0": "ok", "t.parquet#1": "bad_record", "t.parquet#2": "empty",
        "notext.parquet": "corrupt_document", "nocol.parquet": "no_text"}
    assert summary.n_scored == 3 and len(summary.rows) == 10
    # resume keys on the record's name and the hash of its text: an edited record is scored again
    jl.write_text(jl.read_text(encoding="utf-8").replace(essay(2), essay(5)), encoding="utf-8")
    det = FakeDetector()
    again = score_paths(det, inputs, out, resume=True, progress=False)
    assert det.scored == [essay(5)] and again.n_skipped_resume == 2


def test_parquet_output_and_resume(mixed_folder: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "results.parquet"
    score_paths(PrecisionDetector(), [mixed_folder], out, progress=False)
    assert not (tmp_path / "results.parquet.partial.jsonl").exists()
    table = pq.read_table(out)
    assert table.column_names == [*BASE_COLUMNS, "mean_word_len", "vowel_ratio", "feature_n_tokens"]
    assert str(table.schema.field("prob_ai").type) == "double" and str(table.schema.field("n_tokens").type) == "int64"
    rows = table.to_pylist()
    assert len(rows) == len(EXPECTED_STATUS) and {Path(r["path"]).name: r["status"] for r in rows} == EXPECTED_STATUS
    det = FakeDetector()
    summary = score_paths(det, [mixed_folder], out, resume=True, progress=False)
    assert det.scored == [] and summary.n_skipped_resume == 5
    assert pq.read_table(out).to_pylist() == rows
    (tmp_path / "foreign.parquet").write_bytes(b"nope")
    with pytest.raises(OutputExistsError, match="not a readable Parquet"):
        score_paths(FakeDetector(), [mixed_folder], tmp_path / "foreign.parquet", resume=True, progress=False)


def test_cli_ray_options_need_the_ray_engine(tmp_path: Path, fake_cli: FakeDetector,
                                            capsys: pytest.CaptureFixture) -> None:
    make_folder(tmp_path / "in", 1)
    assert cli.main(["score", str(tmp_path / "in"), "--workers", "2"]) == 2
    assert "--engine ray" in capsys.readouterr().err
    assert cli.main(["score", str(tmp_path / "in"), "--engine", "spark"]) == 2
