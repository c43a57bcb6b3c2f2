"""Backbone continuations of human prefixes: paired, cut alike, tagged with the source their prefix came from."""

from __future__ import annotations

import pandas as pd

from training import self_continuation as sc


def test_a_pair_is_cut_to_the_same_number_of_words_without_layout() -> None:
    human = " ".join(f"word{i}" for i in range(90))
    ai = "Title: A story\n\n**Bold** " + " ".join(f"next{i}" for i in range(70)) + "  \n"
    h, a = sc.cut_pair(human, ai)
    assert len(h.split()) == len(a.split())
    assert "\n" not in a and "**" not in a and not a.endswith(" ")
    assert sc.cut_pair("too short", ai) is None


def test_generation_pairs_each_prefix_with_its_human_and_resumes(tiny_lm, monkeypatch) -> None:
    monkeypatch.setattr(sc, "NEW_TOKENS", 60)
    monkeypatch.setattr(sc, "MIN_HUMAN_WORDS", 50)
    monkeypatch.setattr(sc, "MIN_WORDS", 10)
    text = " ".join(["The committee met on a cold morning to weigh the plan for the river bridge."] * 6)
    df = pd.DataFrame([{"id": f"{s}{i}", "text": text.replace("river", f"river {s}{i}"), "label": "human",
                        "generator": "human", "domain": "news", "lang": "en", "pair_id": None, "source": s,
                        "variant": None, "split": "train"} for s in ("A", "B") for i in range(3)])
    out = sc.generate(tiny_lm, df, per_source=2, batch_size=2)
    assert len(out) == 8 and set(out["label"]) == {"human", "ai"}
    assert (out["source"] == sc.SOURCE).all() and sorted(set(out["origin"])) == ["A", "B"]
    for _, pair in out.groupby("pair_id"):
        h, a = pair.sort_values("label", ascending=False)["text"]
        assert len(h.split()) == len(a.split())
        # the continuation starts from the human text's own opening
        assert a.split()[:5] == h.split()[:5]
    again = sc.generate(tiny_lm, df, per_source=2, batch_size=2, max_seconds=0.0)  # every shard cached
    pd.testing.assert_frame_equal(out, again)
