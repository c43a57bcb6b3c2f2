"""Judge a DDL setting by leave-one-source-out: ``python -m training.ddl_loso`` (see --help).

For each English training source, LoRA adapters are trained with the DDL loss (``training.ddl``) on pairs from
the other sources only, and the tuned discrepancy alone is scored on the held-out source's test texts, beside
the untuned model's discrepancy (Fast-DetectGPT analytic, same backbone) on the same texts. Training pairs come
from the train split, evaluation texts from the test split (split by prompt, ``training.data.assign_splits``),
so no prompt is on both sides even in-distribution. Every fold's adapter resumes from its checkpoints, and
finished folds are kept in ``<cache_dir>/ddl/loso-<key>.json``, so the table grows across sessions.

Writes ``reports/ddl_loso.json`` and ``reports/ddl_loso.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from detector.lm import DEFAULT_LM, cache_dir, cpu_description, load_lm
from detector.normalize import normalize_text
from training.data import REPO_ROOT, assign_splits, load_sources
from training.ddl import DDLConfig, DDLTrainer, score_discrepancy
from training.shortcuts import strip_shortcuts

SIX_SOURCES = ("detectrl", "hc3_plus", "outfox_dev", "lastde", "l2r", "biscope")
MIN_WORDS = 40  # shorter texts carry too few tokens for a stable discrepancy


def clean_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Texts without markup shortcuts, normalised as the detector normalises them, of at least MIN_WORDS words."""
    df = df.copy()
    df["text"] = [normalize_text(strip_shortcuts(t)).text for t in df["text"]]
    df = df[df["text"].str.split().str.len() >= MIN_WORDS]
    df["split"] = assign_splits(df)
    return df.reset_index(drop=True)


def make_pairs(df: pd.DataFrame, n: int, seed: int) -> list[tuple[str, str]]:
    """Up to ``n`` (human, ai) pairs from one source's train rows.

    Paired sources: a human text and one AI text of its own prompt, picked at random so that generators and
    variants mix. Unpaired sources (DetectRL, HC3-Plus): a human and an AI text of the same domain at random.
    """
    rng = np.random.default_rng(seed)
    humans = df[df["label"] == "human"]
    ais = df[df["label"] == "ai"]
    key = "pair_id" if df["pair_id"].notna().any() else "domain"
    by_key = {k: g["text"].tolist() for k, g in ais[ais[key].notna()].groupby(key)}
    pairs: list[tuple[str, str]] = []
    for _, h in humans.sample(frac=1.0, random_state=seed).iterrows():
        cands = by_key.get(h[key])
        if cands:
            pairs.append((h["text"], cands[int(rng.integers(len(cands)))]))
        if len(pairs) >= n:
            break
    return pairs


def fold_pairs(df: pd.DataFrame, held: str | None, n_pairs: int) -> list[tuple[str, str]]:
    """The training pairs of the fold that holds ``held`` out (None: the shipped adapter, every source): train-split
    pairs, ``n_pairs`` spread evenly over the sources trained on."""
    others = [s for s in sorted(df["source"].unique()) if s != held]
    pairs: list[tuple[str, str]] = []
    for s in others:
        pairs += make_pairs(df[(df["source"] == s) & (df["split"] == "train")], n_pairs // len(others), seed=0)
    return pairs


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC of a raw score (higher = AI); ``training.metrics.auroc`` takes probabilities only."""
    return float(roc_auc_score(y, score))


def load_clean(sources: list[str], data_dir: str | None) -> pd.DataFrame:
    """``clean_rows`` of the English rows of ``sources``, cached as Parquet under the user cache directory."""
    key = hashlib.sha256(json.dumps([sorted(sources), str(data_dir), MIN_WORDS]).encode()).hexdigest()[:12]
    path = cache_dir() / "ddl" / f"rows-{key}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    t0 = time.perf_counter()
    df = clean_rows(load_sources(sources, data_dir, lang="en"))
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    print(f"[ddl-loso] {len(df)} clean rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return df


def eval_rows(df: pd.DataFrame, n_per_label: int, seed: int) -> pd.DataFrame:
    """A balanced sample of one source's test rows."""
    test = df[df["split"] == "test"]
    parts = [g.sample(n=min(len(g), n_per_label), random_state=seed) for _, g in test.groupby("label")]
    return pd.concat(parts).reset_index(drop=True)


def variant_rows(y: np.ndarray, variants: np.ndarray) -> dict[str, np.ndarray]:
    """Per AI variant with at least 20 texts: the mask of every human text and that variant's AI texts (each
    variant judged against the same humans)."""
    return {v: (y == 0) | (variants == v) for v in sorted(set(variants[y == 1]))
            if ((variants == v) & (y == 1)).sum() >= 20}


def update_store(path: Path, updates: dict) -> dict:
    """``path``'s JSON object with ``updates`` merged in, written back and returned: several runs (one per fold,
    in parallel) share one store, so each re-reads it before writing instead of overwriting the others' folds."""
    merged = {**(json.loads(path.read_text()) if path.exists() else {}), **updates}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=1))
    tmp.replace(path)
    return merged


def judge_epochs(trainer: DDLTrainer, df: pd.DataFrame, held: str, n_pairs: int, n_eval: int,
                 judged: dict) -> dict:
    """AUROC on the held-out source's eval texts of the untuned discrepancy (``"0"``) and of every epoch's
    saved adapter, for fold ``held`` (a run in progress included); ``judged`` (epoch -> result) is extended
    in place and returned, so each checkpoint is scored once across sessions."""
    ev = eval_rows(df[df["source"] == held], n_eval, seed=0)
    return _judge(trainer, fold_pairs(df, held, n_pairs), ev, judged, held)


def judge_shipped(trainer: DDLTrainer, df: pd.DataFrame, n_pairs: int, n_eval: int, judged: dict) -> dict:
    """The shipped adapter (every source's train pairs) judged in distribution: AUROC of the untuned
    discrepancy (``"0"``) and of every saved epoch on every source's eval texts (test split, so no prompt it
    trained on), pooled and per source, with the epoch's training discrepancy of both classes. What the
    issue's in-distribution bar asks of the tuned discrepancy alone; extended in place like ``judge_epochs``."""
    pairs = fold_pairs(df, None, n_pairs)
    ev = pd.concat([eval_rows(df[df["source"] == s], n_eval, seed=0) for s in sorted(df["source"].unique())],
                   ignore_index=True)
    trained = {t for pair in pairs for t in pair}
    ev = ev[~ev["text"].isin(trained)].reset_index(drop=True)  # a text filed under both splits stays out
    log = {e["epoch"]: e for e in trainer.train_log(pairs)}
    judged = _judge(trainer, pairs, ev, judged, "shipped adapter, in distribution")
    for epoch, v in judged.items():
        if int(epoch) in log:
            v["train"] = {k: log[int(epoch)][k] for k in ("mean_d_human", "mean_d_ai", "seconds_per_pair")}
    return judged


def _judge(trainer: DDLTrainer, pairs: list[tuple[str, str]], ev: pd.DataFrame, judged: dict, label: str) -> dict:
    y = (ev["label"] == "ai").to_numpy(int)
    texts = ev["text"].tolist()
    variants = ev["variant"].astype(str).to_numpy()
    sources = ev["source"].to_numpy()
    for epoch in [0, *trainer.epochs_saved(pairs)]:
        if str(epoch) in judged:
            continue
        d = (score_discrepancy(trainer.lm.model, trainer.lm, texts, trainer.cfg.max_tokens) if epoch == 0
             else trainer.score_epoch(pairs, epoch, texts))
        by_variant = {v: _auroc(y[m], d[m]) for v, m in variant_rows(y, variants).items()}
        judged[str(epoch)] = {"auroc": _auroc(y, d), "n": len(y), "by_variant": by_variant}
        if len(set(sources)) > 1:
            judged[str(epoch)]["by_source"] = {s: _auroc(y[sources == s], d[sources == s])
                                               for s in sorted(set(sources))}
        print(f"[ddl-loso] {label} epoch {epoch}: AUROC {judged[str(epoch)]['auroc']:.3f}", file=sys.stderr)
    return judged


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", nargs="+", default=list(SIX_SOURCES))
    ap.add_argument("--folds", nargs="*",
                    help="held-out sources to run (default: every source; the flag alone: none, e.g. to train or "
                         "judge only the shipped adapter with --full)")
    ap.add_argument("--pairs", type=int, default=300, help="training pairs per fold, spread evenly over sources")
    ap.add_argument("--eval", type=int, default=150, help="held-out test texts per label")
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this long")
    ap.add_argument("--full", action="store_true",
                    help="also train the shipped adapter on every source's pairs (with --judge-epochs: judge its "
                         "saved epochs in distribution, on every source's test texts)")
    ap.add_argument("--until-epoch", type=int, default=None, metavar="E",
                    help="train each fold only up to epoch E of its schedule, then go on to the next fold "
                         "(breadth first: every fold gets an epoch to judge before any fold runs on)")
    ap.add_argument("--judge-epochs", action="store_true",
                    help="only score every saved epoch of the folds' adapters (finished or not) on their held-out "
                         "texts, and write the report; trains nothing")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--lm", default=DEFAULT_LM)
    ap.add_argument("--report", default=str(REPO_ROOT / "reports" / "ddl_loso"))
    args = ap.parse_args(argv)
    cfg = DDLConfig(k=args.k, lr=args.lr, epochs=args.epochs, max_tokens=args.max_tokens)
    lm = load_lm(args.lm, dtype="float32")
    df = load_clean(args.sources, args.data_dir)
    sources = sorted(df["source"].unique())
    setting = {"ddl": asdict(cfg), "pairs": args.pairs, "eval_per_label": args.eval, "sources": sources,
               "backbone": lm.identity}
    key = hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:12]
    store = cache_dir() / "ddl" / f"loso-{key}.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(store.read_text()) if store.exists() else {}
    deadline = time.perf_counter() + 60 * args.max_minutes if args.max_minutes else None
    epochs_store = store.with_name(f"{store.stem}-epochs.json")
    by_epoch = json.loads(epochs_store.read_text()) if epochs_store.exists() else {}
    shipped_store = store.with_name(f"{store.stem}-shipped.json")
    shipped = json.loads(shipped_store.read_text()) if shipped_store.exists() else {}
    folds = sources if args.folds is None else args.folds
    command = " ".join(["python -m training.ddl_loso", *(argv or sys.argv[1:])])
    if args.judge_epochs:
        for held in folds:
            judged = judge_epochs(DDLTrainer(lm, cfg), df, held, args.pairs, args.eval, by_epoch.get(held, {}))
            by_epoch = update_store(epochs_store, {held: judged})
        if args.full:
            shipped = update_store(shipped_store, judge_shipped(DDLTrainer(lm, cfg), df, args.pairs, args.eval,
                                                                shipped))
        write_report(Path(args.report), setting, done, command, by_epoch, shipped)
        return 0
    for held in folds:
        if held in done:
            continue
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining <= 0:
            break
        pairs = fold_pairs(df, held, args.pairs)
        print(f"[ddl-loso] fold {held}: {len(pairs)} pairs from {sorted(set(sources) - {held})}", file=sys.stderr)
        trainer = DDLTrainer(lm, cfg).fit(pairs, max_seconds=remaining, until_epoch=args.until_epoch)
        if not trainer.finished_:
            print(f"[ddl-loso] fold {held}: stopped after {trainer.log_.steps_done} steps; rerun to resume",
                  file=sys.stderr)
            if args.until_epoch and trainer.log_.steps_done >= args.until_epoch * len(pairs):
                continue  # this fold reached the epoch asked for: on to the next one
            break
        ev = eval_rows(df[df["source"] == held], args.eval, seed=0)
        y = (ev["label"] == "ai").to_numpy(int)
        base = score_discrepancy(lm.model, lm, ev["text"].tolist(), cfg.max_tokens)
        tuned = trainer.score(ev["text"].tolist())
        per_variant = {v: {"n_ai": int((m & (y == 1)).sum()), "auroc_untuned": _auroc(y[m], base[m]),
                           "auroc_tuned": _auroc(y[m], tuned[m])}
                       for v, m in variant_rows(y, ev["variant"].astype(str).to_numpy()).items()}
        done[held] = {"n_human": int((y == 0).sum()), "n_ai": int(y.sum()), "n_pairs": len(pairs),
                      "auroc_untuned": _auroc(y, base), "auroc_tuned": _auroc(y, tuned),
                      "by_variant": per_variant, "train_log": trainer.log_.epochs,
                      "seconds_per_pair": trainer.log_.seconds / max(1, trainer.log_.steps_done)}
        done = update_store(store, {held: done[held]})
        print(f"[ddl-loso] {held}: untuned {done[held]['auroc_untuned']:.3f}  tuned {done[held]['auroc_tuned']:.3f}",
              file=sys.stderr)
    if args.full:  # the adapter a bundle ships: every source's train pairs, judged by the folds above
        pairs = fold_pairs(df, None, args.pairs)
        print(f"[ddl-loso] shipped adapter: {len(pairs)} pairs from {sources}", file=sys.stderr)
        remaining = None if deadline is None else max(1.0, deadline - time.perf_counter())
        trainer = DDLTrainer(lm, cfg).fit(pairs, max_seconds=remaining, until_epoch=args.until_epoch)
        print(f"[ddl-loso] shipped adapter {'done' if trainer.finished_ else 'stopped; rerun to resume'}: "
              f"{trainer.run_dir(pairs)}", file=sys.stderr)
    write_report(Path(args.report), setting, done, command, by_epoch, shipped)
    return 0


def write_report(stem: Path, setting: dict, folds: dict, command: str, by_epoch: dict | None = None,
                 shipped: dict | None = None) -> None:
    """``<stem>.json`` and ``<stem>.md``: per held-out source, AUROC of the untuned and the tuned discrepancy
    (and, with ``by_epoch``, of each saved epoch's adapter; with ``shipped``, the shipped adapter's epochs in
    distribution, from ``judge_shipped``)."""
    finished = folds
    mean = {m: float(np.mean([v[m] for v in finished.values()])) if finished else None
            for m in ("auroc_untuned", "auroc_tuned")}
    out = {"setting": setting, "cpu": cpu_description(), "command": command, "folds": finished, "mean": mean,
           "by_epoch": by_epoch or {}, "shipped_in_distribution": shipped or {}}
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    lines = [f"# DDL, leave one source out ({len(finished)} of {len(setting['sources'])} folds through every epoch)",
             "", f"Command: `{command}`  ", f"CPU: {out['cpu']}  ",
             f"Setting: LoRA r={setting['ddl']['rank']} on q/v of the top {setting['ddl']['k']} blocks, "
             f"lr {setting['ddl']['lr']}, {setting['ddl']['epochs']} epochs, {setting['pairs']} pairs, "
             f"{setting['ddl']['max_tokens']} tokens, fp32.", ""]
    if finished:
        lines += ["| held-out source | humans | AI | AUROC untuned | AUROC tuned | s/pair "
                  "| train d(human) / d(ai), last epoch |", "|---|---|---|---|---|---|---|"]
    for s, v in finished.items():
        last = v["train_log"][-1] if v["train_log"] else {}
        lines.append(f"| {s} | {v['n_human']} | {v['n_ai']} | {v['auroc_untuned']:.3f} | {v['auroc_tuned']:.3f} | "
                     f"{v['seconds_per_pair']:.2f} | {last.get('mean_d_human', float('nan')):.1f} / "
                     f"{last.get('mean_d_ai', float('nan')):.1f} |")
    if finished:
        lines.append(f"| **mean** | | | {mean['auroc_untuned']:.3f} | {mean['auroc_tuned']:.3f} | | |")
    if by_epoch:
        epochs = sorted({int(e) for v in by_epoch.values() for e in v})
        lines += ["", "## Each saved epoch, on the held-out source's texts (epoch 0: untuned)", "",
                  "AUROC of the discrepancy alone; folds still training show the epochs saved so far.", "",
                  "| held-out source | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
                  "|---" * (len(epochs) + 1) + "|"]
        for held, v in by_epoch.items():
            lines.append(f"| {held} | " + " | ".join(f"{v[str(e)]['auroc']:.3f}" if str(e) in v else "—"
                                                      for e in epochs) + " |")
        means = [np.mean([v[str(e)]["auroc"] for v in by_epoch.values()])
                 if all(str(e) in v for v in by_epoch.values()) else None for e in epochs]
        lines.append("| **mean** | " + " | ".join("—" if m is None else f"{m:.3f}" for m in means) + " |")
    if shipped:
        lines += _shipped_lines(shipped)
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def _shipped_lines(shipped: dict) -> list[str]:
    epochs = sorted(shipped, key=int)
    sources = sorted({s for v in shipped.values() for s in v.get("by_source", {})})
    lines = ["", "## The shipped adapter (every source's train pairs), in distribution", "",
             "AUROC of the tuned discrepancy alone on every source's test texts (epoch 0: untuned), and the "
             "epoch's mean training discrepancy of both classes.", "",
             "| epoch | texts | pooled | " + " | ".join(sources) + " | train d(human) / d(ai) |",
             "|---" * (len(sources) + 4) + "|"]
    for e in epochs:
        v = shipped[e]
        train = v.get("train")
        lines.append(f"| {e} | {v['n']} | {v['auroc']:.3f} | "
                     + " | ".join(f"{v.get('by_source', {}).get(s, float('nan')):.3f}" for s in sources)
                     + (f" | {train['mean_d_human']:.2f} / {train['mean_d_ai']:.2f} |" if train else " | — |"))
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
