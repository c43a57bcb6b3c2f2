"""The source-experts study: what a collection's own model is worth in distribution and what routing to it
costs on sources never seen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import six_source, source_experts


def test_the_gate_moves_from_the_pooled_score_to_the_routed_experts_with_the_routers_confidence() -> None:
    pooled = np.array([0.0, 0.0])
    experts = np.array([[2.0, -2.0], [2.0, -2.0]])
    router = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert np.allclose(source_experts.gated(pooled, experts, router, None), [2.0, 0.0])
    assert np.allclose(source_experts.gated(pooled, experts, router, 1), [2.0, 0.0])
    # a sure router keeps its expert at any power; an unsure one falls back to the pooled model as k grows
    sure_and_unsure = np.array([[1.0, 0.0], [0.6, 0.4]])
    z = source_experts.gated(pooled, experts, sure_and_unsure, 16)
    assert z[0] == 2.0 and abs(z[1]) < 1e-3


def _sources_with_their_own_signal(per: int = 90, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Three sources whose AI texts stand out on a different zero-shot feature each, with states that say which
    source a text came from: the case where a collection's own model must beat the pooled one."""
    rng = np.random.default_rng(seed)
    names = list(six_source.ZERO_SHOT)
    rows, records = [], []
    for j, s in enumerate(("A", "B", "C")):
        for label in ("human", "ai"):
            for i in range(per):
                y = int(label == "ai")
                feats = {name: float(rng.normal()) for name in names}
                feats[names[j]] = float(rng.normal(2.0 * y, 1.0))
                pooled = rng.normal(size=(4, 6)).astype(np.float32)
                pooled[:, j] += 3.0
                n = int(rng.integers(60, 300))
                rows.append({"source": s, "label": label, "y": y, "domain": s, "variant": "plain",
                             "generator": "g" if y else "human", "split": "test" if i % 2 else "cal", "n_tokens": n})
                records.append({"features": feats, "n_tokens": n, "pooled": pooled, "tuned": {},
                                "witness_residual": np.zeros(8), "witness_cov": np.zeros(15)})
    return pd.DataFrame(rows), records


def test_own_source_experts_beat_the_pooled_model_in_distribution_and_every_scoring_is_judged_out_of_source() -> None:
    table, records = _sources_with_their_own_signal()
    r = source_experts.study(table, records)
    oracle, pooled = r["in_distribution"]["oracle (told the source)"], r["in_distribution"]["pooled (shipped form)"]
    assert oracle["auroc"] > pooled["auroc"]
    assert all(v["router_accuracy"] > 0.9 for v in r["in_distribution_by_source"].values())
    assert set(r["leave_one_source_out"]) == {"pooled (shipped form)", "routed",
                                             *(f"gated k={k}" for k in source_experts.GATE_POWERS)}
    for row in r["leave_one_source_out"].values():
        assert set(row["by_source"]) == {"A", "B", "C"}
        assert row["guard"] == all(row["by_source"][s] >= r["best_zero_shot_by_fold"][s] - 0.02 for s in "ABC")
    for cal in r["calibration"].values():
        assert 0 <= cal["ece_in_distribution"] <= 1 and 0 <= cal["ece_out_of_source_pooled"] <= 1
    assert "| A |" in source_experts.markdown(r)
