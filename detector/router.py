"""Routing by language: one small class over several Detectors (one bundle each), loaded lazily.

``detector.load()`` (or ``Router.load()``) with no bundle returns a ``Router`` over the shipped bundles. Each
text goes to the bundle trained for its language, as the bundles' own ``manifest.json`` (``languages``) declare
it (read from the manifests, never hard-coded), and only the bundles, and so the backbones, that the texts need
are loaded. A language no bundle claims goes to the default bundle, which answers ``unsupported_language``
exactly as a single ``Detector`` does. ``detector.load(bundle=...)`` / ``Detector.load(bundle)`` (``--bundle``)
pins one bundle.

Why a layer above ``Detector`` and not inside it: each Detector stays one bundle on one backbone, pinned by
its hash (see ``detector.bundle``); the router only decides which one a text goes to. This module imports
``detector.detector``; that module never imports this one.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from detector.bundle import BUNDLES_DIR, DEFAULT_BUNDLE, Bundle, resolve_bundle_path
from detector.detector import MAX_TEXT_CHARS, Detector, bundle_feature_names, score_feature_names
from detector.language import detect_language
from detector.lm import LanguageModel, resolve_dtype
from detector.normalize import normalize_text
from detector.score import Score

_CACHE: dict[tuple[str, str, str], Router] = {}
_CACHE_LOCK = threading.Lock()


def discover_language_bundles(bundles_dir: str | Path = BUNDLES_DIR,
                              default: str | Path = DEFAULT_BUNDLE) -> dict[str, Path]:
    """Language code -> bundle folder, from the ``languages`` of every manifest under ``bundles_dir``.

    When two bundles claim a language, the default bundle wins, then the first by folder name, so adding,
    say, a GPT-2 English bundle next to the shipped one never changes what English texts are scored with.
    A manifest that cannot be read is skipped with a warning (it must not take the other languages down).
    """
    root = Path(bundles_dir)
    folders = sorted(p.parent for p in root.glob("*/manifest.json"))
    default_path = _default_path(root, default)
    folders.sort(key=lambda p: p.resolve() != default_path.resolve())  # stable: default first, then by name
    mapping: dict[str, Path] = {}
    for folder in folders:
        try:
            languages = json.loads((folder / "manifest.json").read_text())["languages"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"bundle {folder} skipped by the language router: unreadable manifest ({exc})",
                          stacklevel=2)
            continue
        for lang in languages:
            mapping.setdefault(str(lang), folder)
    return mapping


def _default_path(root: Path, default: str | Path) -> Path:
    candidate = Path(default)
    if (candidate / "manifest.json").exists():
        return candidate
    return root / str(default)


class Router:
    """Scores each text with the bundle for its language; same public API as ``Detector``.

    ``bundles`` maps language codes to bundle names or folders; ``default`` is the bundle used for texts in
    no listed language (and whose attributes, e.g. ``bundle`` or ``target_fpr``, the router shows where one
    value is expected). Detectors are created on first use through ``Detector.load`` (so they share its
    cache) and are thread-safe; ``Score.bundle`` says which bundle each text was routed to.
    """

    def __init__(self, bundles: Mapping[str, str | Path], default: str | Path = DEFAULT_BUNDLE, *,
                 device: str | None = None, dtype: str | None = None) -> None:
        self.bundle_paths: dict[str, Path] = {lang: resolve_bundle_path(p).resolve() for lang, p in bundles.items()}
        self.default_path = resolve_bundle_path(default).resolve()
        self.device, self.dtype = device, dtype
        self._detectors: dict[Path, Detector] = {}
        self._lock = threading.Lock()

    @classmethod
    def discover(cls, bundles_dir: str | Path = BUNDLES_DIR, default: str | Path = DEFAULT_BUNDLE, *,
                 device: str | None = None, dtype: str | None = None) -> Router:
        """A router over every bundle under ``bundles_dir`` (see ``discover_language_bundles``)."""
        default_path = resolve_bundle_path(_default_path(Path(bundles_dir), default))
        return cls(discover_language_bundles(bundles_dir, default_path), default_path, device=device, dtype=dtype)

    @classmethod
    def load(cls, device: str | None = None, dtype: str | None = None,
             bundles_dir: str | Path = BUNDLES_DIR) -> Router:
        """The router over the shipped bundles; repeated loads return the same router (and its detectors)."""
        key = (str(Path(bundles_dir).resolve()), str(device), str(resolve_dtype(dtype, device or "cpu")))
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = cls.discover(bundles_dir, device=device, dtype=dtype)
            return _CACHE[key]

    # -- routing ----------------------------------------------------------------------------
    def route(self, text: object) -> Path:
        """The bundle folder for ``text``: its language's bundle, else the default one."""
        if not isinstance(text, str):
            return self.default_path  # the default detector reports the error
        lang, _ = detect_language(normalize_text(text[:MAX_TEXT_CHARS]).text)
        return self.bundle_paths.get(lang, self.default_path) if lang else self.default_path

    def detector_for(self, path: str | Path) -> Detector:
        """The Detector of one bundle folder, loaded on first use."""
        path = Path(path).resolve()
        with self._lock:
            if path not in self._detectors:
                self._detectors[path] = Detector.load(path, device=self.device, dtype=self.dtype)
            return self._detectors[path]

    def detector_for_bundle(self, name: str | None) -> Detector:
        """The Detector of the bundle called ``name`` (e.g. a ``Score.bundle``); the default one for None or a
        name no routed bundle has. Lets a caller show the manifest (feature ranges, thresholds) of the bundle
        that actually scored a text."""
        for path in {self.default_path, *self.bundle_paths.values()}:
            if path.name == name:
                return self.detector_for(path)
        return self.default_detector

    @property
    def default_detector(self) -> Detector:
        return self.detector_for(self.default_path)

    @property
    def loaded_bundles(self) -> list[str]:
        """Names of the bundles loaded so far (their backbones are the only ones loaded)."""
        with self._lock:
            return sorted(det.bundle.name for det in self._detectors.values())

    @property
    def languages(self) -> list[str]:
        """Every language some bundle scores."""
        return sorted(self.bundle_paths)

    @property
    def bundles(self) -> dict[str, str]:
        """Language -> bundle folder name, as routed."""
        return {lang: path.name for lang, path in sorted(self.bundle_paths.items())}

    # -- public API (as Detector) -----------------------------------------------------------
    def score(self, text: str, *, prior: float | None = None, target_fpr: float | None = None,
              return_tokens: bool = False) -> Score:
        """Score one text with the bundle for its language; see ``Detector.score_many``."""
        return self.score_many([text], prior=prior, target_fpr=target_fpr, return_tokens=return_tokens)[0]

    def score_many(self, texts: Sequence[str], batch_size: int = 8, *, prior: float | None = None,
                   target_fpr: float | None = None, return_tokens: bool = False) -> list[Score]:
        """Group texts by bundle, score each group with its Detector (batched), return Scores in input order."""
        texts = list(texts)
        groups: dict[Path, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(self.route(text), []).append(i)
        results: list[Score | None] = [None] * len(texts)
        for path, indices in groups.items():
            det = self.detector_for(path)
            scores = det.score_many([texts[i] for i in indices], batch_size=batch_size, prior=prior,
                                    target_fpr=target_fpr, return_tokens=return_tokens)
            for i, score in zip(indices, scores):
                score.bundle = det.bundle.name
                results[i] = score
        return results  # type: ignore[return-value]

    @property
    def feature_names(self) -> list[str]:
        """Every feature a Score may carry, whichever bundle scored it (the batch command's feature columns):
        the common names, then every trained evidence any routed bundle's manifest lists."""
        names = score_feature_names()
        for path in dict.fromkeys([self.default_path, *self.bundle_paths.values()]):
            evidence = json.loads((path / "manifest.json").read_text()).get("evidence", {})
            names += [n for n in bundle_feature_names(evidence) if n not in names]
        return names

    # -- the default detector's attributes (for callers written for one Detector) ------------
    @property
    def bundle(self) -> Bundle:
        return self.default_detector.bundle

    @property
    def lm(self) -> LanguageModel:
        return self.default_detector.lm

    @property
    def precision(self) -> str:
        return self.default_detector.precision

    @property
    def max_tokens(self) -> int:
        return self.default_detector.max_tokens

    @property
    def min_tokens(self) -> int:
        return self.default_detector.min_tokens

    @property
    def threshold_ai(self) -> float:
        return self.default_detector.threshold_ai

    @property
    def threshold_human(self) -> float:
        return self.default_detector.threshold_human

    @property
    def target_fpr(self) -> float:
        return self.default_detector.target_fpr

    def __repr__(self) -> str:
        return f"Router({self.bundles}, default={self.default_path.name!r}, loaded={self.loaded_bundles})"


__all__ = ["Router", "discover_language_bundles"]
