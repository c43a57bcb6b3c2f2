"""Routing by language: detector.load() -> Router over the bundles, each text scored by its language's bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from detector import Detector, load
from detector.bundle import BUNDLES_DIR, DEFAULT_BUNDLE
from detector.detector import score_feature_names
from detector.router import Router, discover_language_bundles
from detector.score import UNSUPPORTED_LANGUAGE

ENGLISH = ("The library opens at nine in the morning, and by ten most of the tables near the windows are taken. "
           "Students come in with their laptops and coffee, while older readers prefer the quiet corner.")
CHINESE = ("我每天早上坐七点十分的那班公交车去上班。说是七点十分，其实它从来没准时过，有时候早两分钟，"
           "有时候晚一刻钟，全看司机心情和前面那个路口堵不堵。冬天最难熬，站台没有挡风的地方。")
RUSSIAN = "Библиотека открывается в девять утра, и к десяти часам большинство столов у окон уже заняты студентами."


def without_bundle(score) -> dict:
    out = score.to_dict(include_text=True)
    out.pop("bundle")
    return out


def copy_bundle(source: Path, target: Path, name: str, languages: list[str]) -> Path:
    """A copy of a trained bundle under another name, claiming other languages (routing reads only manifests)."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(name=name, languages=languages)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def fake_bundle(root: Path, name: str, languages: list[str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": name, "languages": languages}))
    return folder


@pytest.fixture(scope="module")
def two_languages(tiny_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundles folder with the tiny bundle twice: as English (the default) and as Chinese."""
    root = tmp_path_factory.mktemp("bundles-two")
    copy_bundle(tiny_bundle_dir, root / "tiny-en", "tiny-en", ["en"])
    copy_bundle(tiny_bundle_dir, root / "tiny-zh", "tiny-zh", ["zh"])
    return root


# --- discovery from manifests (no model) ------------------------------------------------------------------


def test_shipped_languages_come_from_the_manifests() -> None:
    mapping = discover_language_bundles()
    assert mapping["en"].name == DEFAULT_BUNDLE
    # Chinese is routed exactly when a bundle claims it (gemma3-zh, once trained); until then it is unsupported.
    claims_zh = [p.parent.name for p in BUNDLES_DIR.glob("*/manifest.json")
                 if "zh" in json.loads(p.read_text())["languages"]]
    assert ("zh" in mapping) == bool(claims_zh)


def test_default_bundle_wins_a_shared_language(tmp_path: Path) -> None:
    fake_bundle(tmp_path, "a-other-en", ["en", "de"])
    fake_bundle(tmp_path, "main-en", ["en"])
    fake_bundle(tmp_path, "z-zh", ["zh"])
    mapping = discover_language_bundles(tmp_path, default="main-en")
    assert {k: v.name for k, v in mapping.items()} == {"en": "main-en", "de": "a-other-en", "zh": "z-zh"}


def test_unreadable_manifest_is_skipped(tmp_path: Path) -> None:
    fake_bundle(tmp_path, "main-en", ["en"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="broken"):
        mapping = discover_language_bundles(tmp_path, default="main-en")
    assert {k: v.name for k, v in mapping.items()} == {"en": "main-en"}


def test_load_without_arguments_is_a_lazy_router() -> None:
    router = load()
    assert isinstance(router, Router) and load() is router
    assert "en" in router.languages
    fresh = Router.discover()
    assert fresh.loaded_bundles == []  # nothing (no backbone) is loaded before a text needs it
    assert fresh.route(ENGLISH).name == DEFAULT_BUNDLE
    assert fresh.route(RUSSIAN).name == DEFAULT_BUNDLE  # no bundle: the default one says unsupported_language
    assert fresh.route(None).name == DEFAULT_BUNDLE  # not a string: the default detector reports the error
    assert fresh.feature_names == Router(discover_language_bundles()).feature_names
    assert fresh.loaded_bundles == []


# --- scoring through tiny bundles ------------------------------------------------------------------------


def test_feature_columns_cover_every_routed_bundles_evidence(tmp_path: Path) -> None:
    """The batch command's columns come from the router: a trained evidence that only one routed bundle
    carries still gets its column (read from the manifests, without loading any model)."""
    fake_bundle(tmp_path, "en", ["en"])
    zh = fake_bundle(tmp_path, "zh", ["zh"])
    manifest = json.loads((zh / "manifest.json").read_text())
    manifest["evidence"] = {"witness": {"beta": [0.5]}}
    (zh / "manifest.json").write_text(json.dumps(manifest))
    names = Router.discover(tmp_path, default="en").feature_names
    assert names == score_feature_names() + ["witness"]
    assert Router.discover(tmp_path / "en", default=tmp_path / "en").feature_names == score_feature_names()


def test_pinned_bundle_is_a_plain_detector(tiny_bundle_dir: Path) -> None:
    assert isinstance(Detector.load(str(tiny_bundle_dir)), Detector)
    assert load(str(tiny_bundle_dir)) is Detector.load(str(tiny_bundle_dir))  # the entry point pins it the same way


def test_one_language_router_behaves_like_its_detector(tiny_bundle_dir: Path, tmp_path: Path, tiny_detector) -> None:
    """With only an English bundle (today's shipped set), the router is the Detector: same English scores,
    and Chinese still gets unsupported_language."""
    copy_bundle(tiny_bundle_dir, tmp_path / "tiny", "tiny", list(tiny_detector.languages))
    router = Router.discover(tmp_path, default="tiny")
    texts = [ENGLISH, CHINESE, RUSSIAN, "", "Too short."]
    routed = router.score_many(texts, batch_size=2)
    direct = tiny_detector.score_many(texts, batch_size=2)
    assert [without_bundle(a) for a in routed] == [without_bundle(b) for b in direct]
    assert routed[1].label == UNSUPPORTED_LANGUAGE and routed[1].lang == "zh" and routed[1].prob_ai is None
    assert {s.bundle for s in routed} == {"tiny"}
    assert router.feature_names == tiny_detector.feature_names
    assert router.bundle.name == "tiny" and router.lm is router.default_detector.lm
    for name in ("min_tokens", "threshold_ai", "threshold_human", "target_fpr", "max_tokens", "precision"):
        assert getattr(router, name) == getattr(tiny_detector, name)


def test_two_languages_are_routed(two_languages: Path) -> None:
    router = Router.discover(two_languages, default="tiny-en")
    assert router.bundles == {"en": "tiny-en", "zh": "tiny-zh"}
    assert router.languages == ["en", "zh"]
    texts = [CHINESE, ENGLISH, RUSSIAN, CHINESE[:40], ENGLISH + " " + ENGLISH]
    scores = router.score_many(texts, batch_size=3, prior=0.2, target_fpr=0.05, return_tokens=True)
    assert [s.bundle for s in scores] == ["tiny-zh", "tiny-en", "tiny-en", "tiny-zh", "tiny-en"]
    assert [s.lang for s in scores] == ["zh", "en", "ru", "zh", "en"]
    assert scores[0].label != UNSUPPORTED_LANGUAGE and scores[0].n_tokens > 0
    assert scores[2].label == UNSUPPORTED_LANGUAGE
    # each text gets exactly what its own bundle's Detector gives it (same batches), options included
    for name in ("tiny-en", "tiny-zh"):
        mine = [i for i, s in enumerate(scores) if s.bundle == name]
        expected = Detector.load(two_languages / name).score_many(
            [texts[i] for i in mine], batch_size=3, prior=0.2, target_fpr=0.05, return_tokens=True)
        assert [without_bundle(scores[i]) for i in mine] == [without_bundle(e) for e in expected]
    assert json.loads(json.dumps(scores[0].to_dict()))["bundle"] == "tiny-zh"


def test_the_detector_that_scored_a_text_is_found_by_its_bundle_name(two_languages: Path) -> None:
    """The page shows the manifest (feature ranges, thresholds) of the bundle that scored the text."""
    router = Router.discover(two_languages, default="tiny-en")
    chinese = router.score(CHINESE)
    assert router.detector_for_bundle(chinese.bundle).bundle.name == "tiny-zh"
    assert router.detector_for_bundle("no-such-bundle") is router.default_detector
    single = Detector.load(two_languages / "tiny-en")
    assert single.detector_for_bundle("anything") is single
    assert single.bundles == dict.fromkeys(single.languages, "tiny-en")


def test_only_needed_bundles_are_loaded(two_languages: Path) -> None:
    router = Router.discover(two_languages, default="tiny-en")
    router.score(CHINESE)
    assert router.loaded_bundles == ["tiny-zh"]
    router.score_many([ENGLISH, CHINESE])
    assert router.loaded_bundles == ["tiny-en", "tiny-zh"]


def test_batch_command_scores_through_the_router(two_languages: Path, tmp_path: Path) -> None:
    """The batch code only needs score_many and feature_names: a folder of mixed languages gets one row each."""
    from detector.batch import score_paths

    folder = tmp_path / "essays"
    folder.mkdir()
    (folder / "en.txt").write_text(ENGLISH)
    (folder / "zh.txt").write_text(CHINESE)
    (folder / "ru.txt").write_text(RUSSIAN)
    router = Router.discover(two_languages, default="tiny-en")
    summary = score_paths(router, [folder], tmp_path / "out.jsonl", progress=False)
    rows = {Path(r["path"]).name: r for r in summary.rows}
    assert {name: r["lang"] for name, r in rows.items()} == {"en.txt": "en", "zh.txt": "zh", "ru.txt": "ru"}
    assert rows["ru.txt"]["label"] == UNSUPPORTED_LANGUAGE and rows["zh.txt"]["label"] != UNSUPPORTED_LANGUAGE


# --- the shipped bundles (slow: loads SmolLM2) --------------------------------------------------------------


@pytest.mark.slow
def test_shipped_router_scores_english_as_the_english_bundle(smollm2_fp32) -> None:
    router = load(dtype="float32")
    pinned = Detector.load(DEFAULT_BUNDLE, dtype="float32")
    routed, chinese = router.score_many([ENGLISH, CHINESE])
    assert without_bundle(routed) == without_bundle(pinned.score(ENGLISH))
    assert routed.bundle == DEFAULT_BUNDLE
    if "zh" not in router.languages:  # until a gemma3-zh bundle ships
        assert chinese.label == UNSUPPORTED_LANGUAGE and chinese.bundle == DEFAULT_BUNDLE
    else:
        assert chinese.bundle == router.bundles["zh"] and chinese.label != UNSUPPORTED_LANGUAGE
