"""The backbone comparison (``training.backbone_comparison``): same texts, same design, one table per backbone."""

from __future__ import annotations

import numpy as np

from synthetic import three_source_prepared
from training.backbone_comparison import BLEND, backbone_tables, per_source_features, render
from training.train import Config


def test_the_better_backbone_wins_its_tables_and_the_report_shows_both() -> None:
    strong, weak = three_source_prepared(strength=2.0), three_source_prepared(strength=0.4, seed=1)
    cfg = Config(calibration=("platt_length",))
    tables = {"strong": backbone_tables(cfg, strong), "weak": backbone_tables(cfg, weak)}
    s, w = tables["strong"], tables["weak"]
    assert sorted(s["loso"]) == ["A", "B", "C"] and s["logo"] == {}  # no DetectRL/Lastde generators here
    assert s["loso_mean"][f"combined_w{BLEND}"] > w["loso_mean"][f"combined_w{BLEND}"] + 0.1
    assert s["in_distribution"]["auroc"] > w["in_distribution"]["auroc"] + 0.1
    assert s["in_distribution"]["n_test"] == int(np.sum(strong.rows["split"] == "test"))
    result = {"texts": len(strong.y), "design": "d", "cpu": "test cpu",
              "backbones": {name: {"identity": name, "precision": "float32", **t} for name, t in tables.items()}}
    md = render(result, "python -m training.backbone_comparison")
    assert "| identity, precision | `strong`, float32 | `weak`, float32 |" in md
    assert f"| {s['loso_mean'][f'combined_w{BLEND}']:.3f} | {w['loso_mean'][f'combined_w{BLEND}']:.3f} |" in md


def test_feature_direction_is_fixed_on_the_other_sources() -> None:
    """A feature that points the other way on one source scores below 0.5 there: the held-out source does not
    get to choose the direction."""
    data = three_source_prepared()
    flip = data.rows["source"].to_numpy() == "C"
    noise = np.random.default_rng(0).normal(0, 1, len(data.y))
    # weaker and reversed on C: the sources A and B fix the direction wherever they are in the fit rows
    data.Z[:, 1] = np.where(flip, -0.3 * (data.y - 0.5) + 0.1 * noise, (data.y - 0.5) + 0.5 * noise)
    table = per_source_features(data)
    name = list(table["A"])[1]
    assert table["A"][name] > 0.8 and table["C"][name] < 0.2
