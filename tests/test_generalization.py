"""Generalisation folds never leak the held-out group into what is fit, and the zero-shot guard is honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data import CHAT_PREAMBLE_RE, MODEL_REWRITTEN_HUMAN_VARIANTS, strip_chat_preamble
from training.generalization import (
    best_zero_shot,
    guard_check,
    leave_one_generator_out,
    leave_one_source_out,
    oriented_auroc,
    run_folds,
)


def _rows(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    source = rng.choice(["A", "B", "C"], size=n)
    label = rng.choice(["human", "ai"], size=n)
    gen = np.where(label == "human", "human", rng.choice(["g1", "g2"], size=n))
    split = rng.choice(["train", "cal", "test"], size=n, p=[0.5, 0.2, 0.3])
    return pd.DataFrame({"source": source, "label": label, "generator": gen, "split": split})


def test_leave_one_source_out_holds_the_source_out() -> None:
    rows = _rows()
    folds = leave_one_source_out(rows, min_n=10)
    assert [f.name for f in folds] == ["A", "B", "C"]
    for f in folds:
        assert set(rows["source"].iloc[f.test]) == {f.name}
        assert f.name not in set(rows["source"].iloc[np.concatenate([f.train, f.cal])])
        assert len(f.test) == (rows["source"] == f.name).sum()  # every split of the unseen source is tested


def test_leave_one_generator_out_removes_the_generator_everywhere() -> None:
    rows = _rows()
    folds = leave_one_generator_out(rows, ["A"], min_ai=5)
    assert {f.name for f in folds} == {"A/g1", "A/g2"}
    for f in folds:
        gen = f.name.split("/")[1]
        fit = rows.iloc[np.concatenate([f.train, f.cal])]
        assert gen not in set(fit["generator"])
        test = rows.iloc[f.test]
        assert set(test.loc[test["label"] == "ai", "generator"]) == {gen}
        assert set(test.loc[test["label"] == "human", "split"]) == {"test"}


def test_zero_shot_direction_is_fixed_on_fit_data() -> None:
    y = np.array([0, 0, 1, 1])
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert oriented_auroc(y, x, y, x) == 1.0
    assert oriented_auroc(y, -x, y, -x) == 1.0  # lower = AI learned on fit data
    assert oriented_auroc(y, x, y, -x) == 0.0  # the direction is not re-chosen on test data
    name, value = best_zero_shot(y, np.column_stack([np.zeros(4), x]), ["flat", "good"], np.arange(4), np.arange(4))
    assert (name, value) == ("good", 1.0)


def test_guard_flags_a_model_below_the_zero_shot_feature() -> None:
    rows = _rows()
    y = (rows["label"] == "ai").to_numpy().astype(int)
    feature = y + np.random.default_rng(1).normal(0, 0.5, size=len(y))
    folds = leave_one_source_out(rows, min_n=10)
    table = run_folds(folds, y, {"random": lambda f: np.random.default_rng(2).random(len(f.test)),
                                 "oracle": lambda f: y[f.test].astype(float)},
                      zero_shot=(feature[:, None], ["feature"]))
    assert guard_check(table, "oracle")["holds"] is True
    assert guard_check(table, "random")["holds"] is False


@pytest.mark.parametrize("text, expected", [
    ("Sure, here's a possible continuation of the review:I love it.", "I love it."),
    ("Here is a 12 sentence story in a more human style based on the prompt: The door.", "The door."),
    ("Sure thing. I went home: it rained.", "Sure thing. I went home: it rained."),  # a sentence, not a preamble
    ("Certainly: ", "Certainly: "),  # nothing would be left: keep the text
])
def test_chat_preamble_cut(text: str, expected: str) -> None:
    assert strip_chat_preamble(text) == expected
    assert CHAT_PREAMBLE_RE.pattern.startswith("^")


def test_model_rewritten_human_text_is_ai(tmp_path) -> None:
    import gzip
    import json

    from training.data import load_source

    folder = tmp_path / "src"
    folder.mkdir()
    rows = [{"id": str(i), "text": f"text {i}", "label": "human", "generator": "human", "domain": "news",
             "lang": "en", "pair_id": None, "source": "src", "variant": v}
            for i, v in enumerate([None, "adversarial_character_human", *sorted(MODEL_REWRITTEN_HUMAN_VARIANTS)])]
    with gzip.open(folder / "data.jsonl.gz", "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    df = load_source("src", tmp_path).set_index("variant")["label"]
    assert df["none"] == "human" and df["adversarial_character_human"] == "human"
    assert all(df[v] == "ai" for v in MODEL_REWRITTEN_HUMAN_VARIANTS)
