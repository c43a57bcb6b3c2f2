"""Direct Discrepancy Learning: fine-tune the scorer so its own analytic discrepancy separates human from AI text.

DetectAnyLLM (Fu et al., ACM MM 2025, repo ``fjc2005/DetectAnyLLM``; ``../shared/notes/trained-discrepancy.md``)
tunes the scoring model with the loss ``|d(x_human)| + |gamma - d(x_machine)|``, where ``d`` is Fast-DetectGPT's
analytic discrepancy (Bao et al., 2024) with the tuned model as both sampling and scoring model. The model
then stops being a language model; only its normalised discrepancy is used.

Here LoRA (peft) sits on ``q_proj``/``v_proj`` of the top ``k`` blocks only (``k = num_layers`` is the paper's
setting), the embeddings, lower blocks and the tied LM head frozen: at scoring time one pass can share the lower
blocks and fork above them. Weights stay fp32 whatever the CPU prefers: bf16 rounds a 1e-4 update away.

Training is resumable: the adapter, optimiser and scheduler are saved every ``save_every`` pairs and at each
epoch's end under ``<cache_dir>/ddl/<run key>/``; a run cut off by a session's end continues where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from detector.lm import LanguageModel, cache_dir

# Attention projections LoRA wraps, and the name of the block list, per model type (peft's defaults: q/v).
# GPT-2 fuses q, k and v into one ``c_attn``.
LORA_TARGETS: dict[str, tuple[list[str], str]] = {"gpt2": (["c_attn"], "h")}
GAMMA = 100.0  # the paper's target discrepancy for machine text (30..10,000 all worked; 1 did not)


def analytic_discrepancy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-row Fast-DetectGPT analytic discrepancy, differentiable (Bao et al., 2024; DetectAnyLLM's DDL statistic).

    ``d = (sum_t log p(x_t) - sum_t mu_t) / sqrt(sum_t var_t)`` with ``mu_t = E_{y~p_t}[log p_t(y)]`` and
    ``var_t = Var_{y~p_t}[log p_t(y)]``, over positions where ``mask`` is 1. ``logits`` (B, T, V) predict
    ``targets`` (B, T). The same value as ``detector.features.fast_detectgpt`` on the token statistics.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    lp_x = logp.gather(-1, targets[..., None]).squeeze(-1)
    mu = (p * logp).sum(-1)
    var = (p * (logp - mu[..., None]).square()).sum(-1)
    m = mask.to(logp.dtype)
    return ((lp_x - mu) * m).sum(-1) / ((var * m).sum(-1).clamp_min(1e-6)).sqrt()


def ddl_loss(d_human: torch.Tensor, d_ai: torch.Tensor, gamma: float = GAMMA) -> torch.Tensor:
    """``|d(human)| + |gamma - d(ai)|`` (DetectAnyLLM, ``core/loss.py``), averaged over pairs."""
    return (d_human.abs() + (gamma - d_ai).abs()).mean()


@dataclass
class DDLConfig:
    """One DDL setting; everything that changes the trained weights is in ``key()``."""

    k: int = 30  # LoRA on the top k blocks (num_layers = every block, the paper's setting)
    rank: int = 8
    alpha: int = 32
    lr: float = 1e-4
    epochs: int = 5
    max_tokens: int = 128
    gamma: float = GAMMA
    seed: int = 0
    save_every: int = 50  # pairs between checkpoints inside an epoch

    def key(self, backbone: str, pairs: Sequence[tuple[str, str]]) -> str:
        digest = hashlib.sha256(json.dumps([backbone, asdict(self) | {"save_every": 0}, list(pairs)]).encode())
        return digest.hexdigest()[:16]


@dataclass
class TrainLog:
    """Per-epoch mean training discrepancy of both classes, and seconds per pair."""

    epochs: list[dict] = field(default_factory=list)
    steps_done: int = 0
    seconds: float = 0.0


def add_lora(lm: LanguageModel, cfg: DDLConfig):
    """The backbone in fp32 wrapped with LoRA on q/v of its top ``cfg.k`` blocks (peft); the rest frozen."""
    from peft import LoraConfig, get_peft_model

    model = copy.deepcopy(lm.model).float()  # peft edits the modules it wraps: the loaded backbone stays untouched
    n = lm.num_layers
    targets, pattern = LORA_TARGETS.get(model.config.model_type, (["q_proj", "v_proj"], "layers"))
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules=targets,
                      layers_to_transform=list(range(n - min(cfg.k, n), n)), layers_pattern=pattern, bias="none",
                      fan_in_fan_out=model.config.model_type == "gpt2")  # GPT-2's Conv1D stores weights transposed
    torch.manual_seed(cfg.seed)
    return get_peft_model(model, lora)


def encode_pair(lm: LanguageModel, texts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, ...]:
    """(input_ids, attention_mask, targets, target_mask) for texts prefixed with the start token, right-padded."""
    ids = [[lm.prefix_id] + lm.tokenizer(t, add_special_tokens=False)["input_ids"][:max_tokens] for t in texts]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), lm.prefix_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return input_ids, mask, input_ids[:, 1:], mask[:, 1:]


def discrepancies(model, lm: LanguageModel, texts: Sequence[str], max_tokens: int) -> torch.Tensor:
    """Analytic discrepancy of each text under ``model`` (with grad if enabled)."""
    input_ids, mask, targets, tmask = encode_pair(lm, texts, max_tokens)
    logits = model(input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False).logits
    return analytic_discrepancy(logits[:, :-1], targets.to(lm.device), tmask.to(lm.device))


class DDLTrainer:
    """Train LoRA adapters with the DDL loss on (human, ai) pairs, one pair per step, resumably.

    scikit-learn style: ``fit`` returns self; ``log_`` and ``model_`` are set by it.
    """

    def __init__(self, lm: LanguageModel, cfg: DDLConfig, root: Path | None = None) -> None:
        self.lm = lm
        self.cfg = cfg
        self.root = Path(root or cache_dir() / "ddl")

    def run_dir(self, pairs: Sequence[tuple[str, str]]) -> Path:
        return self.root / self.cfg.key(self.lm.identity, pairs)

    def fit(self, pairs: Sequence[tuple[str, str]], max_seconds: float | None = None,
            until_epoch: int | None = None) -> DDLTrainer:
        """Train for ``cfg.epochs`` over ``pairs`` (human, ai), resuming from the last checkpoint.

        ``max_seconds`` stops (after a checkpoint) once exceeded, so a run can be split across sessions;
        ``until_epoch`` stops after that epoch (the schedule stays the one of ``cfg.epochs``), so several folds
        can be brought to the same epoch before any runs on; ``self.finished_`` says whether all epochs are done.
        """
        cfg, lm = self.cfg, self.lm
        run = self.run_dir(pairs)
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps({"backbone": lm.identity, **asdict(cfg), "n_pairs": len(pairs)}))
        model = add_lora(lm, cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr)
        total = cfg.epochs * len(pairs)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        log = TrainLog()
        state_path = run / "state.pt"
        if state_path.exists():
            state = torch.load(state_path, weights_only=False)
            _load_adapter(model, state["adapter"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            log = TrainLog(**state["log"])
        start = time.perf_counter()
        seconds_before = log.seconds
        model.train()
        epoch_h: list[float] = []
        epoch_a: list[float] = []
        stop = total if until_epoch is None else min(total, until_epoch * len(pairs))
        while log.steps_done < stop:
            epoch, pos = divmod(log.steps_done, len(pairs))
            order = np.random.default_rng(cfg.seed + epoch).permutation(len(pairs))
            if pos == 0:
                epoch_h, epoch_a = [], []
            human, ai = pairs[order[pos]]
            d = discrepancies(model, lm, [human, ai], cfg.max_tokens)
            loss = ddl_loss(d[:1], d[1:], cfg.gamma)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            epoch_h.append(float(d[0].detach()))
            epoch_a.append(float(d[1].detach()))
            log.steps_done += 1
            log.seconds = seconds_before + time.perf_counter() - start
            end_of_epoch = log.steps_done % len(pairs) == 0
            if end_of_epoch:
                log.epochs.append({"epoch": epoch + 1, "mean_d_human": float(np.mean(epoch_h)),
                                   "mean_d_ai": float(np.mean(epoch_a)), "pairs": len(epoch_h),
                                   "seconds_per_pair": log.seconds / log.steps_done})
                print(f"[ddl] epoch {epoch + 1}: d(human) {np.mean(epoch_h):.2f}  d(ai) {np.mean(epoch_a):.2f}  "
                      f"{log.seconds / log.steps_done:.2f} s/pair", file=sys.stderr)
            out_of_time = max_seconds is not None and time.perf_counter() - start > max_seconds
            if end_of_epoch or log.steps_done % cfg.save_every == 0 or out_of_time:
                _save(state_path, model, opt, sched, log)
                if end_of_epoch:
                    torch.save(_adapter_state(model), run / f"adapter-epoch{epoch + 1}.pt")
            if out_of_time:
                break
        model.eval()
        self.model_, self.log_ = model, log
        self.finished_ = log.steps_done >= total
        return self

    def epochs_saved(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """The epochs whose adapter a run over ``pairs`` has saved so far (a run in progress has some)."""
        run = self.run_dir(pairs)
        return sorted(int(p.stem.removeprefix("adapter-epoch")) for p in run.glob("adapter-epoch*.pt"))

    def train_log(self, pairs: Sequence[tuple[str, str]]) -> list[dict]:
        """The per-epoch training log of a run over ``pairs`` so far (mean discrepancy of both classes, seconds
        per pair), read from its checkpoint; empty before the first checkpoint."""
        state = self.run_dir(pairs) / "state.pt"
        return torch.load(state, weights_only=False)["log"]["epochs"] if state.exists() else []

    def score_epoch(self, pairs: Sequence[tuple[str, str]], epoch: int, texts: Sequence[str],
                    batch_size: int = 8) -> np.ndarray:
        """Tuned discrepancy of each text under the adapter saved after ``epoch``: every epoch is judged, not
        only the last, so the number of epochs is chosen by held-out scores."""
        model = add_lora(self.lm, self.cfg)
        _load_adapter(model, torch.load(self.run_dir(pairs) / f"adapter-epoch{epoch}.pt", weights_only=True))
        return score_discrepancy(model.eval(), self.lm, texts, self.cfg.max_tokens, batch_size)

    def score(self, texts: Sequence[str], batch_size: int = 8) -> np.ndarray:
        """Tuned discrepancy of each text (higher = more machine-like)."""
        return score_discrepancy(self.model_, self.lm, texts, self.cfg.max_tokens, batch_size)


@torch.inference_mode()
def score_discrepancy(model, lm: LanguageModel, texts: Sequence[str], max_tokens: int,
                      batch_size: int = 8) -> np.ndarray:
    """Discrepancy of each text under ``model`` (a tuned peft model, or ``lm.model`` for the untuned one)."""
    out = np.zeros(len(texts))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for a in range(0, len(order), batch_size):
        idx = order[a: a + batch_size]
        out[idx] = discrepancies(model, lm, [texts[i] for i in idx], max_tokens).float().cpu().numpy()
    return out


def _adapter_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def _load_adapter(model, state: dict[str, torch.Tensor]) -> None:
    missing = set(state) - set(model.state_dict())
    if missing:
        raise ValueError(f"checkpoint does not fit this adapter: {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


def _save(path: Path, model, opt, sched, log: TrainLog) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"adapter": _adapter_state(model), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "log": asdict(log)}, tmp)
    tmp.replace(path)


def lora_factors(model) -> tuple[dict[str, torch.Tensor], float]:
    """The trained LoRA factors of a peft model as ``{<backbone module path>.A / .B: tensor}`` and their scale,
    the form ``detector.tuned_top.TunedTop.merge_lora`` and bundles take."""
    factors: dict[str, torch.Tensor] = {}
    scales = set()
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            path = name.removeprefix("base_model.model.")
            factors[path + ".A"] = module.lora_A["default"].weight.detach().float().clone()
            factors[path + ".B"] = module.lora_B["default"].weight.detach().float().clone()
            scales.add(float(module.scaling["default"]))
    if len(scales) != 1:
        raise ValueError(f"expected one LoRA scale, found {sorted(scales)}")
    return factors, scales.pop()


def adapter_factors(state: dict[str, torch.Tensor], cfg: DDLConfig) -> tuple[dict[str, torch.Tensor], float]:
    """``lora_factors`` of a saved adapter state (``adapter-epochN.pt``), without rebuilding the peft model."""
    factors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for part, tag in ((".lora_A.default.weight", ".A"), (".lora_B.default.weight", ".B")):
            if key.endswith(part):
                factors[key.removeprefix("base_model.model.").removesuffix(part) + tag] = value.float().clone()
    if not factors:
        raise ValueError("no LoRA factors in this state")
    return factors, cfg.alpha / cfg.rank
