"""int8 transformer blocks for CPUs without native bf16: an explicit, experimental precision (``int8``).

Why it exists: on AVX2-only CPUs bf16 is emulated (about 6x slower than fp32), so the only way past plain
fp32 there would be integer math. ``quantize_blocks`` replaces every Linear layer *inside the transformer
blocks* with ``Int8Linear`` (int8 weights per output channel, int8 activations per token, int32 products
through ``torch._int_mm``, i.e. oneDNN). The token embedding - tied to the LM head in SmolLM2 and GPT-2 -
stays fp32: quantising that head is what ruined the log-probs in an earlier trial (+1.3 to 1.6 nats per
token, ../shared/notes/embedded-models.md), since every feature is a log-softmax over those logits.

Why it is NOT the default anywhere: its per-token log-probs miss the 0.05-nat bound against fp32, and with
the ISA restricted to AVX2 it was no faster than fp32: quantising activations costs what the integer GEMM
saves (reports/precision.md; the figures are in docs/decisions.md).

So ``detector.lm.resolve_dtype('auto')`` never picks it; ``DETECTOR_DTYPE=int8`` / ``dtype="int8"`` loads it
(precision ``int8``, its own LM-pass cache key), for measuring on real AVX2-only machines.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

INT8 = "int8"


class Int8Linear(nn.Module):
    """y = x W^T + b with int8 weights (per output channel) and int8 activations (per token), int32 accumulate.

    Why per token: torch's ``quantize_dynamic`` uses ONE activation scale for the whole (batch x tokens)
    tensor, so the largest activations anywhere (likely the start token's "attention sink") set that scale
    and the other tokens lose their precision; a scale per token keeps each token's own range.

    Why 7-bit weights (|q| <= 63): without VNNI, x86 int8 GEMMs add pairs of u8*s8
    products in int16; with 8-bit weights those sums saturate and the result silently differs from a VNNI
    CPU (docs/decisions.md), with 7-bit they cannot.
    """

    WEIGHT_QMAX = 63
    ACT_QMAX = 127

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        # GPT-2 writes its projections as transformers' Conv1D, weight stored (in, out); state_dict keeps that layout
        self.conv1d_layout = not isinstance(linear, nn.Linear)
        weight = linear.weight.detach().float()
        weight = weight.t() if self.conv1d_layout else weight  # (out, in)
        self.out_features, self.in_features = weight.shape
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / self.WEIGHT_QMAX
        q = torch.round(weight / scale[:, None]).clamp_(-self.WEIGHT_QMAX, self.WEIGHT_QMAX).to(torch.int8)
        self.register_buffer("weight_int8", q)  # (out, in); used transposed, as _int_mm's (in, out) operand
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias_fp32", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).float()
        x_scale = x2.abs().amax(dim=1, keepdim=True).clamp_min_(1e-12).div_(self.ACT_QMAX)
        xq = torch.round(x2 / x_scale).to(torch.int8)
        y = torch._int_mm(xq, self.weight_int8.t()).float()
        y.mul_(x_scale).mul_(self.weight_scale)
        if self.bias_fp32 is not None:
            y.add_(self.bias_fp32)
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Show dequantised fp32 ``weight``/``bias``, so code copying blocks by name (the head) keeps working."""
        weight = self.weight_int8.float() * self.weight_scale[:, None]
        destination[prefix + "weight"] = weight.t().contiguous() if self.conv1d_layout else weight
        if self.bias_fp32 is not None:
            destination[prefix + "bias"] = self.bias_fp32.clone()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        error_msgs.append(f"{prefix}: an int8 block cannot load weights; quantise after loading")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 (7-bit weights)"


def _block_list(model: PreTrainedModel) -> nn.ModuleList:
    """The ModuleList of the model's transformer blocks (``layers`` in Llama/Gemma, ``h`` in GPT-2)."""
    n_layers = int(model.config.num_hidden_layers)
    for _name, child in model.named_modules():
        if isinstance(child, nn.ModuleList) and len(child) == n_layers:
            return child
    raise ValueError(f"no list of {n_layers} transformer blocks found in {type(model).__name__}")


def _swap_linears(module: nn.Module) -> None:
    """Replace every nn.Linear (and GPT-2's Conv1D) under ``module`` by an ``Int8Linear``."""
    from transformers.pytorch_utils import Conv1D

    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, Conv1D)):
            setattr(module, name, Int8Linear(child))
        else:
            _swap_linears(child)


def quantize_blocks(model: PreTrainedModel) -> PreTrainedModel:
    """Replace the Linear layers of every transformer block by ``Int8Linear``; in place.

    The embedding / LM head, norms and everything outside the blocks stay as they are (fp32 expected).
    Returns ``model`` (for chaining), marked with ``model.detector_precision = "int8"``.
    """
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("quantize_blocks expects an fp32 model (int8 blocks next to fp32 everything else)")
    for block in _block_list(model):
        _swap_linears(block)
    model.detector_precision = INT8
    return model


def is_quantized(model: nn.Module) -> bool:
    """True if any module of ``model`` is an ``Int8Linear``."""
    return any(isinstance(m, Int8Linear) for m in model.modules())
