"""The batch command end to end with a real (tiny) bundle: one row per file, right statuses, exit 0."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from detector.bundle import Bundle
from detector.cli import main
from detector.combiner import adjust_for_prior, displayed_probability
from synthetic import AI_SENTENCES, human_text


def _folder(root: Path) -> Path:
    folder = root / "essays"
    folder.mkdir()
    (folder / "ai.txt").write_text(" ".join(AI_SENTENCES * 2))
    (folder / "human.md").write_text(human_text(random.Random(7)))
    (folder / "latin1.txt").write_bytes(("Café naïve résumé. " + human_text(random.Random(8))).encode("cp1252"))
    (folder / "empty.txt").write_text("  \n")
    (folder / "short.txt").write_text("Only a few words.")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (folder / "broken.docx").write_bytes(b"not a zip file at all")
    (folder / "russian.txt").write_text("Это русский текст о промышленной революции. Фабрики заменили мастерские.")
    (folder / "dangling.txt").symlink_to(folder / "missing-target.txt")
    return folder


def test_mixed_folder_one_row_per_file(tiny_bundle_dir: Path, tmp_path: Path, capsys) -> None:
    folder = _folder(tmp_path)
    out = tmp_path / "results.jsonl"
    code = main(["score", str(folder), "--out", str(out), "--bundle", str(tiny_bundle_dir), "--no-progress"])
    assert code == 0
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {p.name for p in folder.iterdir()}
    assert rows["ai.txt"]["status"] == "ok" and rows["ai.txt"]["prob_ai"] is not None
    assert rows["human.md"]["status"] == "ok"
    assert rows["ai.txt"]["prob_ai"] > rows["human.md"]["prob_ai"]
    assert rows["latin1.txt"]["status"] == "ok" and any("decoded_as" in w for w in rows["latin1.txt"]["warnings"])
    assert rows["empty.txt"]["status"] == "empty"
    assert rows["short.txt"]["label"] == "insufficient_text" and rows["short.txt"]["prob_ai"] is None
    assert rows["image.txt"]["status"] == "binary"
    assert rows["broken.docx"]["status"] == "corrupt_document"
    assert rows["russian.txt"]["label"] == "unsupported_language"
    assert rows["dangling.txt"]["status"] == "broken_symlink"
    assert "problems" in capsys.readouterr().err

    # a second run with --resume scores nothing again and keeps exactly one row per file
    code = main(["score", str(folder), "--out", str(out), "--bundle", str(tiny_bundle_dir), "--no-progress",
                 "--resume"])
    assert code == 0
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in again) == sorted(rows)


def test_missing_bundle_is_a_nonzero_exit(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("hello")
    code = main(["score", str(tmp_path), "--bundle", str(tmp_path / "no-such-bundle"), "--no-progress"])
    assert code != 0
    assert "not found" in capsys.readouterr().err


def test_prior_and_target_fpr_options(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    """``--prior`` shifts each text's log-odds by Bayes' rule before display, at any precision.

    The expectation is derived from the default run's own features (the bundle's combiner, uncapped), not from a
    fixed number: how sure the tiny bundle is of a text depends on the backbone's precision (in bf16 it is sure
    enough that a 0.1% prior still shows 0.999), so "the prior lowers the shown number" holds only off the cap.
    """
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ai.txt").write_text(" ".join(AI_SENTENCES * 2))
    (tmp_path / "in" / "human.txt").write_text(human_text(random.Random(3)))
    rows = {}
    for name, extra in (("default", []), ("low_prior", ["--prior", "0.001"])):
        out = tmp_path / f"{name}.jsonl"
        assert main(["score", str(tmp_path / "in"), "--out", str(out), "--bundle", str(tiny_bundle_dir),
                     "--no-progress", *extra]) == 0
        rows[name] = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    combiner = Bundle.load(tiny_bundle_dir).combiner
    for file in ("ai.txt", "human.txt"):
        default, low = rows["default"][file], rows["low_prior"][file]
        assert default["status"] == low["status"] == "ok"
        features = {n: default[n] for n in combiner.feature_names}
        p_raw = float(combiner.predict_rows([features])[0])
        expected = float(displayed_probability(adjust_for_prior(p_raw, 0.001, combiner.base_rate_)))
        assert low["prob_ai"] == pytest.approx(expected, abs=1e-6)
        assert low["prob_ai"] <= default["prob_ai"]
    assert main(["score", str(tmp_path / "in"), "--bundle", str(tiny_bundle_dir), "--prior", "1.5"]) == 2
