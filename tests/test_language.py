"""Language identification: Chinese by script (reliable even for one short sentence), the rest by langid."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from detector.language import chinese_by_script, detect_language, is_supported


@pytest.mark.parametrize("text", [
    "今天天气很好，我们去公园散步吧。",  # 14 characters: too short for langid alone
    "這是一個繁體中文的句子，我們明天見面吧。",  # traditional characters
    "AI模型GPT-4和Claude在2024年发布了新版本，性能提升很大。",  # mixed with Latin words and digits
    "我每天早上坐七点十分的那班公交车去上班。说是七点十分，其实它从来没准时过，有时候早两分钟。",
])
def test_chinese_is_recognised(text: str) -> None:
    lang, confidence = detect_language(text)
    assert lang == "zh" and 0.5 < confidence <= 1.0
    assert is_supported(lang, confidence, ["zh"], text)
    assert not is_supported(lang, confidence, ["en"], text)


@pytest.mark.parametrize(("text", "expected"), [
    ("東京は日本の首都です。今日はとても暑いですね。明日は雨が降るそうです。", "ja"),  # kanji + kana: Japanese
    ("서울은 한국의 수도입니다. 오늘은 날씨가 좋네요. 내일은 비가 온다고 합니다.", "ko"),
    ("The library opens at nine in the morning, and by ten most of the tables are taken.", "en"),
])
def test_other_scripts_are_not_chinese(text: str, expected: str) -> None:
    assert chinese_by_script(text) is None
    assert detect_language(text)[0] == expected


def test_english_with_a_few_chinese_words_stays_english() -> None:
    text = "The word 你好 means hello in Chinese, and 谢谢 means thank you; both are easy to learn."
    assert chinese_by_script(text) is None
    assert detect_language(text)[0] == "en"


@pytest.mark.parametrize("text", ["你好", "", "12345 !!!", "好的。"])
def test_too_short_to_tell(text: str) -> None:
    assert detect_language(text) == (None, 0.0)


SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def test_every_sample_is_labelled_and_in_its_language() -> None:
    """data/samples/labels.csv lists exactly the sample files; Chinese ones (zh/) are identified as Chinese."""
    with open(SAMPLES / "labels.csv", newline="") as fh:
        labels = {row["file"]: row["label"] for row in csv.DictReader(fh)}
    files = {p.relative_to(SAMPLES).as_posix() for p in SAMPLES.rglob("*.txt")}
    assert files == set(labels) and set(labels.values()) == {"ai", "human"}
    chinese = sorted(f for f in files if f.startswith("zh/"))
    assert len(chinese) >= 3
    for name in files:
        lang, _ = detect_language((SAMPLES / name).read_text())
        assert lang == ("zh" if name in chinese else "en"), name
