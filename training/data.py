"""Load labelled human/AI texts and split them by prompt, so no prompt spans two splits.

Sources are local JSON Lines folders/files (``*.jsonl`` / ``*.jsonl.gz`` with the fields
``text, label, generator, domain, lang, pair_id, source, variant``) or Hugging Face hub dataset
ids, all read through ``datasets``. The default root is ``../shared/data`` beside the checkout,
overridable with ``--data-dir`` or ``$DETECTOR_DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from datasets import load_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = ("detectrl", "outfox_dev", "hc3_plus")
COLUMNS = ("id", "text", "label", "generator", "domain", "lang", "pair_id", "source", "variant")
SPLITS = ("train", "cal", "test")
ENGLISH_SOURCES = ("detectrl", "outfox_dev", "hc3_plus", "lastde")
# What the product calls AI: text whose *wording* a language model produced, including human drafts polished,
# paraphrased or back-translated by a model (as HC3-Plus, multilingual_extra and OUTFOX label them). DetectRL
# labels its model-rewritten human texts `human`; they are relabelled here. Character/word typos applied to
# human text stay human: the words are still the writer's.
MODEL_REWRITTEN_HUMAN_VARIANTS = frozenset({
    "paraphrase_polish_human", "paraphrase_dipper_human", "paraphrase_back_translation_human"})
# Chat preambles that leak the label ("Sure, here's a possible continuation of the review:"); cut before training.
CHAT_PREAMBLE_RE = re.compile(
    r"^(?:sure|certainly|of course|here is|here's|here are)\b[^:.!?\n]{0,160}:\s*", re.IGNORECASE)


def default_data_dir() -> Path:
    """$DETECTOR_DATA_DIR, else ../shared/data next to the repository."""
    return Path(os.environ.get("DETECTOR_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def load_source(source: str, data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Rows of one source: a folder under ``data_dir``, a local path, or a hub dataset id."""
    root = Path(data_dir) if data_dir else default_data_dir()
    candidates = [root / source, Path(source)]
    local = next((p for p in candidates if p.exists()), None)
    if local is not None:
        files = [local] if local.is_file() else sorted(
            [*local.rglob("*.jsonl.gz"), *local.rglob("*.jsonl"), *local.rglob("*.json")])
        if not files:
            raise FileNotFoundError(f"no JSON Lines files under {local}")
        ds = load_dataset("json", data_files=[str(f) for f in files], split="train")
    else:  # a hub dataset id (needs the hub or its local cache)
        ds = load_dataset(source, split="train")
    df = ds.to_pandas()
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["source"] = df["source"].fillna(Path(source).name)
    df["id"] = df["id"].where(df["id"].notna(), [f"{source}-{i}" for i in range(len(df))])
    # Surrounding whitespace is a label shortcut in some sets (AI texts opening with a newline).
    df["text"] = df["text"].astype(str).str.strip().map(strip_chat_preamble)
    df["variant"] = df["variant"].fillna("none").astype(str).replace({"None": "none"})
    rewritten = df["variant"].isin(MODEL_REWRITTEN_HUMAN_VARIANTS)
    df["label"] = df["label"].where(~rewritten, "ai")
    df["generator"] = df["generator"].where(~rewritten, "model-rewritten human")
    df["domain"] = df["domain"].fillna("unknown").astype(str)
    return df[df["text"].str.len() > 0][list(COLUMNS)].reset_index(drop=True)


def source_licences(sources: Iterable[str], data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Each source's licence as its dataset README states it ("License as stated by the source: ...").

    Bundles carry this in their manifest: some sources are non-commercial or state no licence at all.
    """
    root = Path(data_dir) if data_dir else default_data_dir()
    out = {}
    for source in sources:
        readme = root / source / "README.md"
        text = readme.read_text() if readme.exists() else ""
        match = re.search(r"License as stated by the source:\s*(.+)", text)
        out[source] = match.group(1).strip() if match else "unknown (no dataset README with a licence line)"
    return out


def strip_chat_preamble(text: str) -> str:
    """Drop a leading chat preamble ("Sure, here is the rewritten text:"): a label shortcut, not writing."""
    return CHAT_PREAMBLE_RE.sub("", text, count=1).strip() or text


def load_sources(sources: Iterable[str] = DEFAULT_SOURCES, data_dir: str | os.PathLike | None = None,
                 lang: str | None = "en") -> pd.DataFrame:
    """All rows of ``sources`` in one frame, restricted to ``lang`` when given."""
    frames = [load_source(s, data_dir) for s in sources]
    df = pd.concat(frames, ignore_index=True)
    if lang:
        df = df[df["lang"] == lang].reset_index(drop=True)
    return df


def group_key(row: pd.Series) -> str:
    """The unit that must stay on one side of a split: the prompt (pair_id), else the text id."""
    return str(row["pair_id"]) if pd.notna(row["pair_id"]) and row["pair_id"] else f"id:{row['id']}"


def _unit_hash(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return int(h[:12], 16) / float(1 << 48)


def assign_splits(df: pd.DataFrame, fractions: tuple[float, float, float] = (0.5, 0.2, 0.3),
                  seed: int = 0) -> pd.Series:
    """train/cal/test per row by a seeded hash of its group, so every text of a prompt lands together."""
    groups = df.apply(group_key, axis=1)
    cut1, cut2 = fractions[0], fractions[0] + fractions[1]
    u = groups.map(lambda g: _unit_hash(g, seed))
    return pd.Series(["train" if x < cut1 else "cal" if x < cut2 else "test" for x in u], index=df.index)


def sample_split(df: pd.DataFrame, sizes: dict[str, int], source_weights: dict[str, float] | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """Grouped split, then a sample of each split stratified by source and label.

    ``sizes`` gives texts per split; each source gets its weight's share, half human, half AI
    (or as many as it has). Returns the sampled rows with a ``split`` column.
    """
    df = df.copy()
    df["split"] = assign_splits(df, seed=seed)
    sources = sorted(df["source"].unique())
    weights = source_weights or {s: 1.0 for s in sources}
    total_w = sum(weights.get(s, 0.0) for s in sources)
    picked = []
    for split, n_split in sizes.items():
        for source in sources:
            n_source = int(round(n_split * weights.get(source, 0.0) / total_w))
            cell = df[(df["split"] == split) & (df["source"] == source)]
            for label in ("human", "ai"):
                part = cell[cell["label"] == label]
                take = min(len(part), n_source // 2)
                picked.append(part.sample(n=take, random_state=seed) if take < len(part) else part)
    out = pd.concat(picked).sort_values(["split", "source", "label", "id"]).reset_index(drop=True)
    return out


def split_manifest(df: pd.DataFrame) -> dict:
    """Which ids went where, plus counts: enough to reproduce and audit the split."""
    return {
        "ids": {s: df.loc[df["split"] == s, "id"].tolist() for s in SPLITS},
        "counts": {s: {f"{src}/{lab}": int(n) for (src, lab), n in
                       df.loc[df["split"] == s].groupby(["source", "label"]).size().items()} for s in SPLITS},
    }
