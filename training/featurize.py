"""The expensive step, done once per text: one LM pass, cached in resumable shards outside the work tree.

The cache lives under the user cache directory (``<cache_dir>/lm-pass/<key>/``), keyed by what the pass
depends on: backbone identity, precision, ``max_tokens`` and the cached hidden layer. Inside, each shard
holds up to ``SHARD_SIZE`` texts, each found again by the SHA-256 of its (normalised) text, so
re-sampling, re-ordering or growing the training set reuses every text already done, and a pass cut off
when a session ends continues in the next one. Per text it keeps:

* the token statistics (features and segment training are computed from them, so new features never
  need a new pass);
* the hidden state entering block L-K (bf16), from which fine-tuned heads of depth k <= K train without
  running the frozen lower blocks again;
* mean-pooled hidden states at a few depths (fp32), for cheap linear-probe heads.

Run from the command line, the pass waits between batches while any ``/tmp/pause-featurize*`` file
exists, so a benchmark can borrow the CPU without killing the pass.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from detector.lm import LanguageModel, cache_dir
from detector.normalize import normalize_text
from detector.token_stats import compute_token_stats

SHARD_SIZE = 64
PAUSE_GLOB = "/tmp/pause-featurize*"


def pooled_layers(num_layers: int) -> tuple[int, ...]:
    """Depths whose token-mean hidden state is kept: a quarter, half, three quarters and the final (normed) one."""
    return tuple(sorted({num_layers // 4, num_layers // 2, (3 * num_layers) // 4, num_layers}))


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def pass_dir(lm: LanguageModel, *, max_tokens: int, hidden_layer: int, root: Path | None = None) -> Path:
    """Cache folder of one pass configuration (backbone identity, precision, max_tokens, hidden layer)."""
    slug = re.sub(r"[^A-Za-z0-9@._-]+", "_", lm.identity)
    return Path(root or cache_dir() / "lm-pass") / f"{slug}-{lm.precision}-mt{max_tokens}-h{hidden_layer}"


def _index(folder: Path) -> dict[str, str]:
    """text key -> shard file, from the shards' key lists (a shard without its key list is unfinished)."""
    index: dict[str, str] = {}
    for keys_file in sorted(folder.glob("shard_*.keys.json")):
        shard = keys_file.name.replace(".keys.json", ".pt")
        if (folder / shard).exists():
            for key in json.loads(keys_file.read_text()):
                index[key] = shard
    return index


def _wait_while_paused() -> None:
    announced = False
    while glob.glob(PAUSE_GLOB):
        if not announced:
            print("[featurize] paused (a /tmp/pause-featurize* file exists)", file=sys.stderr)
            announced = True
        time.sleep(5)


@torch.inference_mode()
def featurize(lm: LanguageModel, texts: Sequence[str], folder: Path, *, max_tokens: int, hidden_layer: int,
              batch_size: int = 8, shard_size: int = SHARD_SIZE, worker: int = 0, n_workers: int = 1,
              pausable: bool = False) -> None:
    """Run the LM pass over every (normalised) text not yet in ``folder``; resumable at shard granularity.

    ``worker``/``n_workers``: several processes (one thread each) can share a pass, each taking every
    n-th text and writing its own shards; on a busy 2-core machine that beats one 2-thread process,
    whose OpenMP threads spin against the other jobs. ``pausable``: wait while a ``/tmp/pause-featurize*``
    file exists (the command line turns this on; library calls and tests never wait).
    """
    folder.mkdir(parents=True, exist_ok=True)
    done = _index(folder)
    todo: dict[str, str] = {}
    for text in texts:
        key = text_key(text)
        if key not in done:
            todo.setdefault(key, text)
    if not todo:
        return
    layers = pooled_layers(lm.num_layers)
    items = list(todo.items())[worker::n_workers]
    prefix = f"shard_w{worker}" if n_workers > 1 else "shard"
    next_shard = 0
    bar = tqdm(total=len(items), desc=f"LM pass ({lm.precision})", unit="text")
    for start in range(0, len(items), shard_size):
        if pausable:
            _wait_while_paused()
        chunk = items[start:start + shard_size]
        stats = compute_token_stats(lm, [t for _, t in chunk], max_tokens=max_tokens, batch_size=batch_size,
                                    hidden_layer=hidden_layer, pooled_layers=layers)
        payload = {}
        for (key, _text), st in zip(chunk, stats):
            payload[key] = {
                "token_ids": st.token_ids.astype(np.int32), "offsets": st.offsets.astype(np.int32),
                "logprob": st.logprob, "rank": st.rank.astype(np.int32), "entropy": st.entropy,
                "var_ref": st.var_ref, "truncated": st.truncated, "hidden": st.hidden.to(torch.bfloat16),
                "pooled": st.pooled,
            }
        while (folder / f"{prefix}_{next_shard:05d}.keys.json").exists():
            next_shard += 1
        shard = folder / f"{prefix}_{next_shard:05d}.pt"
        tmp = shard.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(shard)
        keys_tmp = folder / f"{prefix}_{next_shard:05d}.keys.tmp"
        keys_tmp.write_text(json.dumps(list(payload)))
        keys_tmp.replace(folder / f"{prefix}_{next_shard:05d}.keys.json")  # written last: marks the shard finished
        next_shard += 1
        bar.update(len(chunk))
    bar.close()


def cached_count(folder: Path, texts: Sequence[str]) -> int:
    """How many of ``texts`` already have a cached pass."""
    done = _index(folder) if folder.exists() else {}
    return sum(text_key(t) in done for t in texts)


def load_records(folder: Path, texts: Sequence[str], *, with_hidden: bool = True) -> list[dict | None]:
    """The cached record of each text (``None`` where the pass has not reached it yet), in ``texts`` order."""
    index = _index(folder)
    want: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        shard = index.get(text_key(text))
        if shard is not None:
            want.setdefault(shard, []).append(i)
    out: list[dict | None] = [None] * len(texts)
    for shard, rows in sorted(want.items()):
        payload = torch.load(folder / shard, weights_only=False)
        for i in rows:
            rec = dict(payload[text_key(texts[i])])
            if not with_hidden:
                rec.pop("hidden", None)
            rec["text"] = texts[i]
            for name in ("token_ids", "rank", "offsets"):
                rec[name] = rec[name].astype(np.int64)
            out[i] = rec
        del payload
    return out


def normalized(texts: Sequence[str]) -> list[str]:
    """The texts exactly as the Detector feeds them to the model."""
    return [normalize_text(t).text for t in texts]
