"""Direct Discrepancy Learning: the statistic, the loss, and a resumable LoRA run on the tiny GPT-2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detector.features import fast_detectgpt
from detector.token_stats import stats_from_logits
from synthetic import ai_text, human_text
from training.ddl import DDLConfig, DDLTrainer, analytic_discrepancy, ddl_loss, score_discrepancy


def test_discrepancy_is_fast_detectgpt_of_the_token_stats() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 40, 30, generator=g) * 3
    targets = torch.randint(0, 30, (1, 40), generator=g)
    d = analytic_discrepancy(logits, targets, torch.ones(1, 40))
    st = stats_from_logits(logits[0], targets[0])
    assert float(d[0]) == pytest.approx(fast_detectgpt(st["logprob"], st["entropy"], st["var_ref"]), rel=1e-4)


def test_discrepancy_ignores_masked_positions() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 12, 20, generator=g)
    targets = torch.randint(0, 20, (2, 12), generator=g)
    mask = torch.ones(2, 12)
    mask[1, 8:] = 0
    d = analytic_discrepancy(logits, targets, mask)
    alone = analytic_discrepancy(logits[1:, :8], targets[1:, :8], torch.ones(1, 8))
    assert float(d[1]) == pytest.approx(float(alone[0]), rel=1e-5)


def test_loss_is_zero_only_at_the_targets() -> None:
    assert float(ddl_loss(torch.tensor([0.0]), torch.tensor([100.0]))) == 0.0
    assert float(ddl_loss(torch.tensor([2.0]), torch.tensor([90.0]))) == pytest.approx(12.0)


def _pairs(n: int) -> list[tuple[str, str]]:
    import random

    rng = random.Random(5)
    return [(human_text(rng), ai_text(rng)) for _ in range(n)]


def test_training_opens_the_gap_and_resumes(tiny_lm, tmp_path) -> None:
    pairs = _pairs(6)
    before = {k: v.clone() for k, v in tiny_lm.model.state_dict().items()}
    cfg = DDLConfig(k=1, lr=5e-3, epochs=3, max_tokens=48, save_every=2)
    first = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs, max_seconds=0.0)  # stops after one step
    assert not first.finished_ and first.log_.steps_done == 1
    trainer = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs)  # resumes from the checkpoint
    assert trainer.finished_ and trainer.log_.steps_done == 18 and len(trainer.log_.epochs) == 3
    assert sorted(p.name for p in trainer.run_dir(pairs).glob("adapter-epoch*.pt")) == [
        f"adapter-epoch{i}.pt" for i in (1, 2, 3)]
    # the backbone itself is untouched: the tuned weights live in the adapter only
    after = tiny_lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trainable = [n for n, p in trainer.model_.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".h.1." in n for n in trainable)  # top block only
    humans, ais = [h for h, _ in pairs], [a for _, a in pairs]
    gap_tuned = trainer.score(ais).mean() - trainer.score(humans).mean()
    gap_base = (score_discrepancy(tiny_lm.model, tiny_lm, ais, 48).mean()
                - score_discrepancy(tiny_lm.model, tiny_lm, humans, 48).mean())
    assert gap_tuned > gap_base + 1.0
    first_epoch, last_epoch = trainer.log_.epochs[0], trainer.log_.epochs[-1]
    assert last_epoch["mean_d_ai"] - last_epoch["mean_d_human"] > first_epoch["mean_d_ai"] - first_epoch["mean_d_human"]
    assert np.isfinite(trainer.score(humans)).all()
    # every saved epoch can be judged: the last one is the trained model, an earlier one is not
    assert trainer.epochs_saved(pairs) == [1, 2, 3]
    assert np.allclose(trainer.score_epoch(pairs, 3, ais), trainer.score(ais), atol=1e-4)
    assert not np.allclose(trainer.score_epoch(pairs, 1, ais), trainer.score(ais), atol=1e-3)


def test_store_merges_parallel_folds(tmp_path) -> None:
    """Two fold runs sharing a store: the second write keeps the first one's fold."""
    from training.ddl_loso import update_store

    store = tmp_path / "loso.json"
    update_store(store, {"A": {"auroc": 0.6}})
    assert update_store(store, {"B": {"auroc": 0.7}}) == {"A": {"auroc": 0.6}, "B": {"auroc": 0.7}}


def test_forked_top_blocks_reproduce_the_tuned_model(tiny_lm, tmp_path) -> None:
    """The scoring-time fork (untuned lower blocks shared, tuned top merged from LoRA factors) gives the same
    discrepancy as the trained peft model run end to end."""
    from detector.token_stats import compute_token_stats
    from detector.tuned_top import TunedTop, tuned_discrepancy
    from training.ddl import lora_factors

    pairs = _pairs(3)
    cfg = DDLConfig(k=1, lr=5e-3, epochs=1, max_tokens=48)
    trainer = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs)
    factors, scale = lora_factors(trainer.model_)
    assert factors and all(".h.1." in k for k in factors)
    top = TunedTop(tiny_lm.model, k=1).merge_lora(factors, scale)
    text = pairs[0][1]
    (st,) = compute_token_stats(tiny_lm, [text], max_tokens=48, hidden_layer=tiny_lm.num_layers - 1)
    forked = tuned_discrepancy(top, tiny_lm, st.hidden, st.token_ids)
    assert forked == pytest.approx(float(trainer.score([text])[0]), rel=1e-4, abs=1e-4)
    untuned = fast_detectgpt(st.logprob, st.entropy, st.var_ref)
    assert abs(forked - untuned) > 1e-3  # the fork is the tuned model, not the base one


def test_saved_adapter_gives_the_same_factors(tiny_lm, tmp_path) -> None:
    """A fold's adapter file (``adapter-epochN.pt``) merges into the fork exactly as the live peft model does."""
    from training.ddl import adapter_factors, lora_factors

    pairs = _pairs(2)
    cfg = DDLConfig(k=1, lr=5e-3, epochs=1, max_tokens=32)
    trainer = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs)
    live, live_scale = lora_factors(trainer.model_)
    saved, saved_scale = adapter_factors(torch.load(trainer.run_dir(pairs) / "adapter-epoch1.pt"), cfg)
    assert saved_scale == live_scale and saved.keys() == live.keys()
    assert all(torch.equal(saved[k], live[k]) for k in live)


def test_every_saved_epoch_is_judged_once_on_the_held_out_source(tiny_lm, tmp_path) -> None:
    """``judge_epochs``: the untuned discrepancy (epoch 0) and each saved epoch get an AUROC on the held-out
    source's test texts; a checkpoint already judged is not scored again."""
    import pandas as pd

    from training.ddl_loso import judge_epochs

    rows = []
    for source, split, n in (("A", "train", 4), ("B", "test", 6)):
        for h, a in _pairs(n):
            rows += [{"source": source, "split": split, "label": "human", "text": h, "pair_id": h[:20],
                      "variant": None},
                     {"source": source, "split": split, "label": "ai", "text": a, "pair_id": h[:20],
                      "variant": None}]
    df = pd.DataFrame(rows)
    cfg = DDLConfig(k=1, lr=5e-3, epochs=2, max_tokens=32)
    trainer = DDLTrainer(tiny_lm, cfg, root=tmp_path)
    judged = judge_epochs(trainer, df, "B", n_pairs=4, n_eval=6, judged={})
    assert list(judged) == ["0"] and judged["0"]["n"] == 12  # nothing trained yet: the untuned score only
    from training.ddl_loso import fold_pairs

    trainer.fit(fold_pairs(df, "B", 4))
    judged = judge_epochs(trainer, df, "B", n_pairs=4, n_eval=6, judged=judged)
    assert list(judged) == ["0", "1", "2"] and all(0.0 <= v["auroc"] <= 1.0 for v in judged.values())
    judged["1"]["auroc"] = -1.0  # a judged epoch is kept, not recomputed
    assert judge_epochs(trainer, df, "B", n_pairs=4, n_eval=6, judged=judged)["1"]["auroc"] == -1.0


def test_the_shipped_adapter_is_judged_in_distribution_per_source_with_its_training_gap(tiny_lm, tmp_path) -> None:
    """``judge_shipped``: the adapter trained on every source's train pairs is scored on every source's test
    texts, pooled and per source, each saved epoch once, beside that epoch's training discrepancy."""
    import pandas as pd

    from training.ddl_loso import fold_pairs, judge_shipped, write_report

    rows = []
    texts = iter(_pairs(16))
    for source in ("A", "B"):
        for split, n in (("train", 4), ("test", 4)):
            for _ in range(n):
                h, a = next(texts)
                rows += [{"source": source, "split": split, "label": "human", "text": h, "pair_id": h[:20],
                          "variant": None},
                         {"source": source, "split": split, "label": "ai", "text": a, "pair_id": h[:20],
                          "variant": None}]
    df = pd.DataFrame(rows)
    trainer = DDLTrainer(tiny_lm, DDLConfig(k=1, lr=5e-3, epochs=2, max_tokens=32), root=tmp_path)
    judged = judge_shipped(trainer, df, n_pairs=4, n_eval=4, judged={})
    assert list(judged) == ["0"] and judged["0"]["n"] == 16 and set(judged["0"]["by_source"]) == {"A", "B"}
    pairs = fold_pairs(df, None, 4)
    assert {t for p in pairs for t in p} <= set(df.loc[df["split"] == "train", "text"])
    trainer.fit(pairs)
    judged = judge_shipped(trainer, df, n_pairs=4, n_eval=4, judged=judged)
    assert list(judged) == ["0", "1", "2"] and "train" not in judged["0"]
    assert [judged[e]["train"]["mean_d_human"] for e in ("1", "2")] == [e["mean_d_human"] for e in trainer.log_.epochs]
    judged["1"]["auroc"] = -1.0  # a judged epoch is kept, not recomputed
    assert judge_shipped(trainer, df, n_pairs=4, n_eval=4, judged=judged)["1"]["auroc"] == -1.0
    setting = {"ddl": {"rank": 8, "k": 1, "lr": 5e-3, "epochs": 2, "max_tokens": 32}, "pairs": 4, "sources": ["A", "B"]}
    write_report(tmp_path / "r", setting, {}, "cmd", {}, judged)
    assert "## The shipped adapter" in (tmp_path / "r.md").read_text()


def test_until_epoch_stops_at_the_epoch_and_resumes_on_the_same_schedule(tiny_lm, tmp_path, monkeypatch) -> None:
    """Breadth-first training: a fold stopped after epoch 1 goes on later to exactly the run it would have been."""
    for module in tiny_lm.model.modules():  # the tiny GPT-2 has dropout (SmolLM2 has none): make runs repeatable
        if isinstance(module, torch.nn.Dropout):
            monkeypatch.setattr(module, "p", 0.0)
    pairs = _pairs(3)
    cfg = DDLConfig(k=1, lr=5e-3, epochs=2, max_tokens=32)
    part = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs, until_epoch=1)
    assert not part.finished_ and part.log_.steps_done == 3 and part.epochs_saved(pairs) == [1]
    done = DDLTrainer(tiny_lm, cfg, root=tmp_path).fit(pairs)
    straight = DDLTrainer(tiny_lm, cfg, root=tmp_path / "straight").fit(pairs)
    assert done.finished_ and done.log_.steps_done == 6
    texts = [a for _, a in pairs]
    assert np.allclose(done.score(texts), straight.score(texts), atol=1e-4)
