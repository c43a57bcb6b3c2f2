"""What one training run is: its settings (``Config``) and the feature and calibration choices they default to.

Every pipeline step (``training.rows``, ``training.lm_pass``, ``training.prepared``, ``training.fit``, ...)
and ``training.evaluate`` read a ``Config``; this module imports none of them, so any step can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.features import FEATURE_NAMES
from detector.lm import DEFAULT_LM
from training.data import ENGLISH_SOURCES, REPO_ROOT

# Features that are not evidence of authorship and stay out of the document combiner. Length is a property of
# how a collection was built, not of who wrote a text, and a combiner given `n_tokens` learns "long = AI".
# Length still matters where it should: `min_tokens` abstention and the per-length `ai` line.
# See docs/decisions.md.
NOT_EVIDENCE = ("n_tokens",)
COMBINER_FEATURES = tuple(n for n in FEATURE_NAMES if n not in NOT_EVIDENCE)
# Zero-shot features measured but kept out of the shipped bundles' combiners by default (``--exclude-features``
# sets the list; pass it with no names to use every feature): they help a little on held-out sources but cost
# test accuracy and `ai` verdicts, and can push the unseen-source `ai` line to the calibrator's cap.
# See docs/decisions.md.
NOT_SHIPPED = ("logprob_per_char", "entropy_per_char", "chars_per_token")
# Document probabilities are calibrated with Platt scaling: strictly monotone, so the 1%-FPR `ai` line can fall
# between any two texts. Isotonic calibration maps the most AI-like texts and the most AI-like humans to one flat
# top step, which can leave no threshold below 1% FPR that flags anything.
# ``platt_length`` makes the Platt slope depend on log(length) (``detector.combiner.Calibrator``), because one
# line over all lengths can be under-confident on long texts. Whether that carries to unseen sources is a design
# decision like the others: the grid tries each of ``--calibration`` (default both) and the leave-one-source-out
# table decides. See docs/decisions.md.
CALIBRATIONS = ("platt", "platt_length")
# Which texts the document calibration learns from (``--calibrate-on``). The detector gives no probability below
# `min_tokens`, so calibrating on the answered texts alone fits what users see. It is not the default because the
# leave-one-source-out table, which scores every length, preferred calibrating on all of them for English.
# See docs/decisions.md.
CALIBRATE_ON = ("all", "answered")


@dataclass
class Config:
    """The settings of one training run (``python -m training.train``'s options)."""

    name: str = "smollm2-en"
    lm: str = DEFAULT_LM
    data_dir: str | None = None
    sources: tuple[str, ...] = ENGLISH_SOURCES
    lang: str = "en"
    sizes: tuple[int, int, int] = (10600, 2000, 2400)
    source_weights: tuple[tuple[str, float], ...] = (("DetectRL", 0.4), ("HC3-Plus", 0.2), ("Lastde", 0.25),
                                                     ("OUTFOX", 0.15))
    max_tokens: int = 256
    # Texts shorter than this (characters, stripped) are not sampled. HC3-Plus's Chinese rewrites are single
    # sentences (median ~25 characters) that the detector answers `insufficient_text`; left in, they would fill
    # most of a Chinese sample and the LM pass. 0 keeps every text (the English default).
    min_chars: int = 0
    cached_k: int = 4  # the LM pass keeps the input of block L - cached_k: heads up to this depth train from it
    batch_size: int = 8
    seed: int = 0
    runs_dir: str = str(REPO_ROOT / "runs")
    bundle_dir: str | None = None
    reports_dir: str = str(REPO_ROOT / "reports")
    device: str | None = None
    pass_only: bool = False
    partial: bool = False  # train on the texts whose LM pass is cached so far (the rest: a later run)
    heads: tuple[str, ...] = ("probe", "routed")  # head families in the design grid: "probe", "routed", "blocks"
    block_k: tuple[int, ...] = (4,)  # depths of the fine-tuned blocks heads tried (<= cached_k)
    calibration: tuple[str, ...] = CALIBRATIONS  # the grid tries each: "platt", "platt_length" (slope ~ log length)
    exclude_features: tuple[str, ...] = NOT_SHIPPED  # zero-shot features kept out of the combiner
    # "answered": calibrators learn from, and `ai` lines guard, only texts of >= min_tokens (measured first), in
    # every fold too; "all": every length (see CALIBRATE_ON)
    calibrate_on: str = "all"
    worker: int = 0
    n_workers: int = 1
    pausable: bool = False  # the LM pass waits while /tmp/pause-featurize* exists (command line only)
    command: str = ""  # the command line that trained the bundle (written to the report)

    def cached_depth(self, num_layers: int) -> int:
        """How many top blocks the cached hidden state sits below (``cached_k``, at most the whole model)."""
        return min(self.cached_k, num_layers)

    def data_key(self) -> dict:
        """What the cached rows and LM pass depend on: change any and the cache is rebuilt elsewhere."""
        key = {"lm": self.lm, "sources": list(self.sources), "lang": self.lang, "sizes": list(self.sizes),
               "source_weights": dict(self.source_weights), "max_tokens": self.max_tokens, "seed": self.seed}
        if self.min_chars:
            key["min_chars"] = self.min_chars
        return key
