"""Shared fixtures: a tiny random GPT-2 and, for ``slow`` tests, the embedded SmolLM2.

The tiny GPT-2 uses the real GPT-2 tokenizer from ``../shared/gpt2-tokenizer`` when that folder is there
(``$DETECTOR_GPT2_TOKENIZER`` overrides it); otherwise a small byte-level BPE is trained in the session on
the English text in ``tests/synthetic.py``, so the suite needs nothing beside the clone.

The tests never touch the network: ``HF_HUB_OFFLINE`` is set before transformers is imported, so a
missing model fails at once instead of hanging on a download. Converted backbones and hash memos go
to a per-session temporary ``DETECTOR_CACHE_DIR``, except for the embedded model, which is loaded from
the real cache (so its one-off GGUF conversion is reused rather than redone for every test run).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # lets plain `pytest` (not only `python -m pytest`) import detector
    sys.path.insert(0, str(REPO_ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

from detector import lm as lm_module  # noqa: E402

# One intra-op thread by default: the test models are tiny, and on a busy 2-core machine waking a second
# thread costs ~10 ms per op (measured: the fast suite ran 30x slower with 2 threads next to a busy job).
torch.set_num_threads(int(os.environ.get("DETECTOR_TEST_THREADS", "1")))

# The user's real cache, captured before the session switches DETECTOR_CACHE_DIR to a temporary folder.
REAL_CACHE_DIR = lm_module.cache_dir()

ENGLISH_PARAGRAPH = (
    "The library opens at nine in the morning, and by ten most of the tables near the windows are taken. "
    "Students come in with their laptops and coffee, while older readers prefer the quiet corner with the "
    "newspapers. Last winter the city council voted to extend the opening hours on weekends, because so many "
    "people asked for a warm place to study. The decision cost a little more money for heating and staff, but "
    "the librarians say it was worth it. On Saturday afternoons there is now a reading club for children, and "
    "a volunteer teaches basic computer skills to anyone who wants to learn how to send an email or fill in a "
    "form online."
)


def gpt2_tokenizer_dir() -> Path:
    """Folder of the shared GPT-2 tokenizer: $DETECTOR_GPT2_TOKENIZER, else <repo>/../shared/gpt2-tokenizer."""
    return Path(os.environ.get("DETECTOR_GPT2_TOKENIZER", REPO_ROOT.parent / "shared" / "gpt2-tokenizer"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers used by this suite."""
    config.addinivalue_line("markers", "slow: loads the embedded SmolLM2 backbone (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "browser: drives a real headless Chromium against streamlit run app.py")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point DETECTOR_CACHE_DIR at a temporary folder for the session (unless the user set it)."""
    previous = os.environ.get("DETECTOR_CACHE_DIR")
    if previous:
        yield Path(previous)
        return
    folder = tmp_path_factory.mktemp("detector-cache")
    os.environ["DETECTOR_CACHE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop("DETECTOR_CACHE_DIR", None)


def uses_real_gpt2_tokenizer() -> bool:
    """True when the real GPT-2 tokenizer is available (then exact GPT-2 token ids can be asserted)."""
    return (gpt2_tokenizer_dir() / "vocab.json").exists()


FALLBACK_VOCAB_SIZE = 1200
ENDOFTEXT = "<|endoftext|>"


@functools.lru_cache(maxsize=1)
def fallback_tokenizer_dir() -> Path:
    """A byte-level BPE tokenizer trained once per session on the bundled English text (no ../shared needed).

    Why: the tests only need *a* GPT-2-style tokenizer (byte-level BPE, ``<|endoftext|>`` as start/end token,
    offsets) to exercise the GPT-2 code path; training one on a few KB takes well under a second.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    from synthetic import tokenizer_training_text

    folder = Path(tempfile.mkdtemp(prefix="tiny-bpe-"))
    atexit.register(shutil.rmtree, folder, True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(tokenizer_training_text().splitlines(), vocab_size=FALLBACK_VOCAB_SIZE,
                            min_frequency=1, special_tokens=[ENDOFTEXT], show_progress=False)
    bpe.save_model(str(folder))
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = [tuple(line.split(" ")) for line in (folder / "merges.txt").read_text().splitlines()
              if line and not line.startswith("#version")]
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                                  unk_token=ENDOFTEXT)
    tokenizer.save_pretrained(str(folder))
    return folder


def build_tiny_gpt2(target: Path, seed: int = 0) -> Path:
    """Save a tiny randomly initialised GPT-2 (2 layers, 64 wide) plus a GPT-2-style tokenizer into ``target``.

    The tokenizer is the real GPT-2 one when ``gpt2_tokenizer_dir()`` has it, else the session-trained BPE.
    """
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok_dir = gpt2_tokenizer_dir() if uses_real_gpt2_tokenizer() else fallback_tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    if (tok_dir / "config.json").exists():
        config = GPT2Config.from_json_file(str(tok_dir / "config.json"))
    else:
        end_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=end_id, eos_token_id=end_id)
    config.n_layer, config.n_embd, config.n_head, config.n_positions = 2, 64, 2, 1024
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(name="build_tiny_gpt2", scope="session")
def build_tiny_gpt2_fixture() -> Callable[..., Path]:
    """The builder itself, for tests that need a second tiny model (e.g. another seed)."""
    return build_tiny_gpt2


@pytest.fixture(scope="session")
def english_paragraph() -> str:
    """About 150 tokens of plain, natural English prose."""
    return ENGLISH_PARAGRAPH


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random GPT-2 with a GPT-2-style tokenizer (seed 0); see ``build_tiny_gpt2``."""
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "tiny-gpt2", seed=0)


@pytest.fixture(scope="session")
def tiny_lm(tiny_gpt2_dir: Path) -> lm_module.LanguageModel:
    """The tiny GPT-2 loaded through the product loader, fp32 on CPU."""
    return lm_module.load_lm(str(tiny_gpt2_dir), device="cpu", dtype="float32")


def _load_embedded(dtype: str) -> lm_module.LanguageModel:
    previous = os.environ.get("DETECTOR_CACHE_DIR")
    os.environ["DETECTOR_CACHE_DIR"] = str(REAL_CACHE_DIR)
    try:
        return lm_module.load_lm("embedded:smollm2", device="cpu", dtype=dtype)
    except lm_module.BackboneError as exc:
        pytest.skip(f"embedded SmolLM2 unavailable: {exc}")
    finally:
        if previous is None:
            os.environ.pop("DETECTOR_CACHE_DIR", None)
        else:
            os.environ["DETECTOR_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def smollm2_fp32() -> lm_module.LanguageModel:
    """The embedded SmolLM2 in fp32 (slow tests only)."""
    return _load_embedded("float32")


@pytest.fixture(scope="session")
def smollm2_bf16() -> lm_module.LanguageModel:
    """The embedded SmolLM2 in bf16 (slow tests only)."""
    return _load_embedded("bfloat16")


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle trained end to end (training.train) on a tiny random GPT-2 and a synthetic corpus."""
    from tiny_bundle import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny-bundle"))


@pytest.fixture(scope="session")
def tiny_detector(tiny_bundle_dir: Path):
    """The tiny bundle loaded through the public API."""
    from detector import Detector

    return Detector.load(str(tiny_bundle_dir))
