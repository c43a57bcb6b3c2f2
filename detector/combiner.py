"""Calibrated combiner: logistic regression over features + classifier logit, then Platt or isotonic.

scikit-learn fits it; what is kept is plain arrays, so a bundle loads with no pickle.
Conventions follow scikit-learn: ``__init__`` stores parameters, ``fit`` returns self,
learned attributes end in ``_``, ``predict_proba`` returns (n, 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# What a reader is shown: within [PROB_FLOOR, 1 - PROB_FLOOR] (``displayed_probability``), printed by
# ``detector.display.format_probability``; the calibrator itself is not capped (see detector.display).
from detector.display import PROB_FLOOR

CALIBRATION_METHODS = ("platt", "isotonic")
# Platt scaling whose slope depends on log(length): short texts carry less evidence, so the same
# raw score is worth less confidence there than on a long text. One Platt line over all lengths is over-
# confident on short texts and under-confident on long ones, which is what the texts a detector answers feel
# most (gemma3-zh: ECE 0.086 on texts >= min_tokens with one line, 0.058 with this one; see the README).
PLATT_LENGTH = "platt_length"
LENGTH_REFERENCE = 64.0  # tokens; log(length / this) centres the length term
# Shorter texts get the slope of this length. No bundle answers below 16 tokens (the shortest `min_tokens`
# tried), and letting 1-3-token answers (HC3-Plus has them) set the range made the slope reach zero there, so
# the fit fell back to one line for the whole English bundle.
LENGTH_FLOOR = 16.0
EPS = 1e-6
# ``calibrate_from`` keeps this many texts of each class at least; with fewer long texts it uses every length.
MIN_CALIBRATION_PER_CLASS = 20


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def displayed_probability(p: np.ndarray | float) -> np.ndarray:
    """P(AI) as a reader is shown it: within [PROB_FLOOR, 1 - PROB_FLOOR]. Only for display: thresholds are
    compared with the uncapped score, so the order among the surest texts is kept. This is the number files and
    JSON carry; ``detector.display.format_probability`` is how it is printed (three decimals, "> 0.999")."""
    return np.clip(np.asarray(p, dtype=np.float64), PROB_FLOOR, 1 - PROB_FLOOR)


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def transform_features(X: np.ndarray, names: Sequence[str], log_features: Sequence[str]) -> np.ndarray:
    """What every combiner's linear model reads: the columns ``names`` of ``X``, those in ``log_features``
    through log1p (heavy-tailed), non-finite values made finite."""
    X = np.array(X, dtype=np.float64, copy=True)
    for j, name in enumerate(names):
        if name in log_features:
            X[:, j] = np.log1p(np.clip(X[:, j], 0.0, None))
    return np.nan_to_num(X, nan=0.0, posinf=1e6, neginf=-1e6)


def with_length_slopes(X: np.ndarray, n_tokens: np.ndarray | None, center: float,
                       n_range: tuple[float, float] | None = None) -> np.ndarray:
    """``[X, X * l]`` with ``l = log(n_tokens) - center``: a linear model over these columns gives every feature a
    weight that moves with the text's length (``w + v * l``).

    Why: what a statistic is worth depends on how many tokens it averages (a mean over 50 tokens is noisier than
    one over 250, and the shape statistics need length to settle), so a feature's best weight on a short answer
    is not its best weight on a long essay. One weight per feature has to split the difference, and held-out
    collections of one length paid for it (docs/accuracy.md, "Shipped: weights that move with length"). There
    is no term in ``l`` alone: length by itself must not read as AI (the shortcut ``Calibrator`` also avoids).
    ``n_range``: lengths are clipped to it (the fit rows' range), so a weight is never extrapolated past the
    lengths it was learned on."""
    if n_tokens is None:
        raise ValueError("a combiner with length slopes reads each text's length: pass n_tokens")
    n = np.clip(np.asarray(n_tokens, dtype=np.float64), 1.0, None)
    if n_range is not None:
        n = np.clip(n, *n_range)
    ell = np.log(n) - center
    return np.column_stack([X, X * ell[:, None]])


def length_reference(n_tokens: np.ndarray) -> tuple[float, tuple[float, float]]:
    """What ``with_length_slopes`` centres and clips on, from the fit rows' lengths: their mean log length and
    their shortest and longest."""
    n = np.clip(np.asarray(n_tokens, dtype=np.float64), 1.0, None)
    return float(np.mean(np.log(n))), (float(n.min()), float(n.max()))


class Calibrator:
    """Maps a raw score to a probability: Platt (sigmoid), isotonic (monotone steps, interpolated), or
    ``platt_length``: a sigmoid of (z, z x l) with l = log(n_tokens / 64), the length clipped to the range
    seen in fitting, so confidence grows with the evidence a text gives. Length scales the slope only: a term
    in l alone would let the calibration learn "long = AI" from the training sources, a shortcut that cost
    0.05 leave-one-source-out AUROC on Chinese. It stays strictly increasing in z at every length (checked
    when fit), so a probability threshold is still a score threshold per length."""

    def __init__(self, method: str = "platt") -> None:
        self.method = method

    @property
    def needs_length(self) -> bool:
        return self.method == PLATT_LENGTH

    def _length_term(self, n_tokens: np.ndarray | None) -> np.ndarray:
        if n_tokens is None:
            raise ValueError("this calibration depends on length: pass n_tokens")
        n = np.clip(np.asarray(n_tokens, dtype=np.float64), self.n_min_, self.n_max_)
        return np.log(n / LENGTH_REFERENCE)

    def fit(self, z: np.ndarray, y: np.ndarray, n_tokens: np.ndarray | None = None) -> Calibrator:
        z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if self.method == "platt":
            lr = LogisticRegression(C=1e6).fit(z[:, None], y)
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        elif self.method == PLATT_LENGTH:
            if n_tokens is None:
                raise ValueError("platt_length calibration is fit on lengths: pass n_tokens")
            n = np.asarray(n_tokens, dtype=np.float64)
            self.n_min_ = float(max(LENGTH_FLOOR, n.min()))
            self.n_max_ = float(max(self.n_min_, n.max()))
            ell = self._length_term(n)
            lr = LogisticRegression(C=1e6).fit(np.column_stack([z, z * ell]), y)
            (self.a_, self.c_), self.b_ = map(float, lr.coef_[0]), float(lr.intercept_[0])
            ends = self._length_term(np.array([self.n_min_, self.n_max_]))
            if np.any(self.a_ + self.c_ * ends <= 0):  # not increasing in z at some length: one line instead
                self.method = "platt"
                return self.fit(z, y)
        elif self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(z, y)
            self.x_, self.y_ = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return self

    def transform(self, z: np.ndarray, n_tokens: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(AI), uncapped: ``displayed_probability`` is what a reader sees."""
        z = np.asarray(z, dtype=np.float64)
        if self.method == "platt":
            p = _sigmoid(self.a_ * z + self.b_)
        elif self.method == PLATT_LENGTH:
            ell = self._length_term(n_tokens)
            p = _sigmoid((self.a_ + self.c_ * ell) * z + self.b_)
        else:
            p = np.interp(z, self.x_, self.y_)
        return p  # uncapped: see PROB_FLOOR

    def to_dict(self) -> dict:
        if self.method == "platt":
            return {"method": "platt", "a": self.a_, "b": self.b_}
        if self.method == PLATT_LENGTH:
            return {"method": PLATT_LENGTH, "a": self.a_, "b": self.b_, "c": self.c_,
                    "n_min": self.n_min_, "n_max": self.n_max_, "length_reference": LENGTH_REFERENCE}
        return {"method": "isotonic", "x": self.x_, "y": self.y_}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        cal = cls(d["method"])
        if cal.method == "platt":
            cal.a_, cal.b_ = d["a"], d["b"]
        elif cal.method == PLATT_LENGTH:
            if d.get("length_reference", LENGTH_REFERENCE) != LENGTH_REFERENCE:
                raise ValueError("calibrator saved with another length reference")
            cal.a_, cal.b_, cal.c_ = d["a"], d["b"], d["c"]
            cal.n_min_, cal.n_max_ = d["n_min"], d["n_max"]
        else:
            cal.x_, cal.y_ = d["x"], d["y"]
        return cal


class CalibratedCombiner:
    """P(AI) from a named feature vector: scale -> logistic regression -> calibrator.

    ``log_features`` are passed through log1p first (perplexities and counts are heavy-tailed).
    ``C=None`` picks the regularisation strength from ``C_GRID`` by cross-validated log-loss (a
    small calibration split overfits easily); ``calibration="auto"`` picks Platt or isotonic by
    cross-validated Brier score on the fit data; ``calibration="platt_length"`` makes the calibration depend on
    each text's length (``n_tokens`` at fit and predict time, see ``Calibrator``).

    ``calibrate_from``: only texts of at least this many tokens fit the calibrator (the linear model still sees
    every text). Why: the detector abstains below ``min_tokens``, so no user ever sees a probability there, yet
    short texts' weak evidence flattens a calibration fit on all lengths, and the texts it does answer come out
    under-confident (gemma3-zh: ECE 0.089 on the answered test texts against 0.047 on all).

    ``length_slopes``: the linear model also reads every feature times the text's centred log length
    (``with_length_slopes``), so ``n_tokens`` is needed at fit and predict time; ``length_center_`` is the fit
    rows' mean log length, ``length_range_`` their shortest and longest (lengths are clipped to it), and
    ``mean_``, ``scale_`` and ``coef_`` cover the features and then their slopes.
    """

    C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)

    def __init__(self, feature_names: Sequence[str], log_features: Sequence[str] = (), C: float | None = None,
                 calibration: str = "auto", cv: int = 5, random_state: int = 0, calibrate_from: int = 0,
                 length_slopes: bool = False) -> None:
        self.feature_names = list(feature_names)
        self.log_features = list(log_features)
        self.C = C
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state
        self.calibrate_from = int(calibrate_from)
        self.length_slopes = bool(length_slopes)

    def _transform(self, X: np.ndarray, n_tokens: np.ndarray | None = None) -> np.ndarray:
        Xt = transform_features(X, self.feature_names, self.log_features)
        return with_length_slopes(Xt, n_tokens, self.length_center_, self.length_range_) if self.length_slopes else Xt

    def matrix(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """Rows of named features -> the (n, d) matrix in ``feature_names`` order."""
        return np.asarray([[float(r[name]) for name in self.feature_names] for r in rows], dtype=np.float64)

    @property
    def needs_length(self) -> bool:
        """Whether ``predict_proba`` needs each text's ``n_tokens`` (length slopes or a length-aware calibration)."""
        return self.length_slopes or self.calibrator_.needs_length

    def fit(self, X: np.ndarray, y: np.ndarray, n_tokens: np.ndarray | None = None) -> CalibratedCombiner:
        """``n_tokens``: each row's length, needed (and only used) by length slopes and the ``platt_length``
        calibration."""
        self.fit_n_tokens_ = None if n_tokens is None else np.asarray(n_tokens, dtype=np.float64)
        if self.length_slopes:
            if n_tokens is None:
                raise ValueError("a combiner with length slopes is fit on lengths: pass n_tokens")
            self.length_center_, self.length_range_ = length_reference(self.fit_n_tokens_)
        Xt, y = self._transform(X, n_tokens), np.asarray(y, dtype=np.int64)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        if self.C is None:
            search = make_pipeline(StandardScaler(), LogisticRegressionCV(
                Cs=list(self.C_GRID), cv=folds, scoring="neg_log_loss", max_iter=2000, l1_ratios=(0.0,),
                use_legacy_attributes=False)).fit(Xt, y)
            self.C_ = float(np.ravel(search[1].C_)[0])
        else:
            self.C_ = float(self.C)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C_, max_iter=2000))
        # Out-of-fold scores: what the calibrator (and thresholds) must see to be honest.
        self.oof_decision_ = cross_val_predict(model, Xt, y, cv=folds, method="decision_function")
        model.fit(Xt, y)
        scaler, lr = model[0], model[1]
        self.mean_, self.scale_ = scaler.mean_.tolist(), scaler.scale_.tolist()
        self.coef_, self.intercept_ = lr.coef_[0].tolist(), float(lr.intercept_[0])
        return self._calibrate(y)

    def calibration_rows(self, y: np.ndarray) -> np.ndarray:
        """Mask of the fit rows the calibrator learns from: those of at least ``calibrate_from`` tokens, or every
        row when lengths are unknown or too few long texts of a class remain."""
        n = self.fit_n_tokens_
        if not self.calibrate_from or n is None:
            return np.ones(len(y), dtype=bool)
        keep = n >= self.calibrate_from
        if min(np.sum(keep & (y == 0)), np.sum(keep & (y == 1))) < MIN_CALIBRATION_PER_CLASS:
            return np.ones(len(y), dtype=bool)
        return keep

    def _calibrate(self, y: np.ndarray) -> CalibratedCombiner:
        """Pick and fit the calibrator on the out-of-fold decisions (``oof_decision_``) of the calibration rows;
        ``oof_proba_`` covers every fit row."""
        y = np.asarray(y, dtype=np.int64)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        methods = CALIBRATION_METHODS if self.calibration == "auto" else (self.calibration,)
        n = self.fit_n_tokens_
        keep = self.calibration_rows(y)
        z, yk, nk = self.oof_decision_[keep], y[keep], None if n is None else n[keep]
        self.calibration_scores_ = {m: self._cv_brier(m, z, yk, folds, nk) for m in methods}
        method = min(self.calibration_scores_, key=self.calibration_scores_.get)
        self.calibrator_ = Calibrator(method).fit(z, yk, nk)
        self.method_ = self.calibrator_.method  # platt_length falls back to platt if not increasing everywhere
        self.oof_proba_ = self.calibrator_.transform(self.oof_decision_, n)
        self.base_rate_ = float(np.mean(yk))  # the class balance the calibrator learned
        self.calibrated_on_ = int(keep.sum())
        return self

    @classmethod
    def blend(cls, full: CalibratedCombiner, part: CalibratedCombiner, weight: float,
              y: np.ndarray) -> CalibratedCombiner:
        """``weight`` x ``full``'s decision + (1 - weight) x ``part``'s, recalibrated: still one linear model.

        Why: shrinking the trained head's model toward the zero-shot-only one is how the detector is kept from
        losing to its own zero-shot evidence on collections it never saw. Both must be fit on the same rows (so
        their scalers agree on shared columns); features only ``part`` reads are appended to ``full``'s.
        """
        if full.length_slopes or part.length_slopes:
            raise ValueError("blending combiners with length slopes is not supported")
        extra = [n for n in part.feature_names if n not in full.feature_names]
        names = [*full.feature_names, *extra]
        shared = [n for n in part.feature_names if n in full.feature_names]
        fi, pi = [full.feature_names.index(n) for n in shared], [part.feature_names.index(n) for n in shared]
        if not np.allclose(np.asarray(full.mean_)[fi], np.asarray(part.mean_)[pi]) or \
                not np.allclose(np.asarray(full.scale_)[fi], np.asarray(part.scale_)[pi]):
            raise ValueError("blend needs both combiners fit on the same rows")
        ei = [part.feature_names.index(n) for n in extra]
        out = cls(names, full.log_features, C=full.C_, calibration=full.calibration, cv=full.cv,
                  random_state=full.random_state, calibrate_from=full.calibrate_from)
        coef = np.r_[weight * np.asarray(full.coef_), np.zeros(len(extra))]
        coef[[names.index(n) for n in part.feature_names]] += (1.0 - weight) * np.asarray(part.coef_)
        out.C_, out.coef_ = full.C_, coef.tolist()
        out.mean_ = [*full.mean_, *(part.mean_[i] for i in ei)]
        out.scale_ = [*full.scale_, *(part.scale_[i] for i in ei)]
        out.intercept_ = weight * full.intercept_ + (1.0 - weight) * part.intercept_
        out.blend_weight_ = weight
        out.oof_decision_ = weight * full.oof_decision_ + (1.0 - weight) * part.oof_decision_
        out.fit_n_tokens_ = full.fit_n_tokens_
        return out._calibrate(y)

    def recalibrate(self, z: np.ndarray, y: np.ndarray, n_tokens: np.ndarray | None = None,
                    method: str = "platt") -> CalibratedCombiner:
        """Refit the calibrator on raw scores ``z`` of labelled texts other than the fit rows.

        Why: a calibration learned on the training sources' own (even out-of-fold) scores is over-confident on a
        collection the model never saw. Fit on leave-one-source-out scores (each text scored by a model fit
        without its source), the probability describes what a new collection looks like
        (``training/six_source.py``).
        """
        self.calibrator_ = Calibrator(method).fit(z, y, n_tokens)
        self.method_ = self.calibrator_.method
        self.base_rate_ = float(np.mean(y))
        self.calibrated_on_ = int(len(y))
        self.calibration_scores_ = {}
        return self

    @staticmethod
    def _cv_brier(method: str, z: np.ndarray, y: np.ndarray, folds: StratifiedKFold,
                  n_tokens: np.ndarray | None = None) -> float:
        losses = []
        for tr, te in folds.split(z[:, None], y):
            n_tr, n_te = (None, None) if n_tokens is None else (n_tokens[tr], n_tokens[te])
            p = Calibrator(method).fit(z[tr], y[tr], n_tr).transform(z[te], n_te)
            losses.append(np.mean((p - y[te]) ** 2))
        return float(np.mean(losses))

    def decision_function(self, X: np.ndarray, n_tokens: np.ndarray | None = None) -> np.ndarray:
        Z = (self._transform(X, n_tokens) - np.asarray(self.mean_)) / np.asarray(self.scale_)
        return Z @ np.asarray(self.coef_) + self.intercept_

    def predict_proba(self, X: np.ndarray, n_tokens: np.ndarray | None = None) -> np.ndarray:
        p = self.calibrator_.transform(self.decision_function(X, n_tokens), n_tokens)
        return np.column_stack([1 - p, p])

    def predict_rows(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        """P(AI) of rows of named features (each with ``n_tokens`` when the calibration is length-aware)."""
        n = np.asarray([float(r["n_tokens"]) for r in rows]) if self.needs_length else None
        return self.predict_proba(self.matrix(rows), n)[:, 1]

    def to_dict(self) -> dict:
        return {"feature_names": self.feature_names, "log_features": self.log_features, "C": self.C_,
                "mean": self.mean_, "scale": self.scale_, "coef": self.coef_, "intercept": self.intercept_,
                "calibrator": self.calibrator_.to_dict(), "base_rate": self.base_rate_,
                "calibration_cv_brier": self.calibration_scores_, "calibrate_from": self.calibrate_from,
                **({"length_slopes": True, "length_center": self.length_center_,
                    "length_range": list(self.length_range_)} if self.length_slopes else {})}

    @classmethod
    def from_dict(cls, d: dict) -> CalibratedCombiner:
        obj = cls(d["feature_names"], d["log_features"], C=d["C"], calibration=d["calibrator"]["method"],
                  calibrate_from=d.get("calibrate_from", 0), length_slopes=d.get("length_slopes", False))
        obj.C_ = d["C"]
        if obj.length_slopes:
            obj.length_center_ = float(d["length_center"])
            obj.length_range_ = tuple(map(float, d["length_range"]))
        obj.mean_, obj.scale_, obj.coef_, obj.intercept_ = d["mean"], d["scale"], d["coef"], d["intercept"]
        obj.calibrator_ = Calibrator.from_dict(d["calibrator"])
        obj.method_ = obj.calibrator_.method
        obj.base_rate_ = d["base_rate"]
        obj.calibration_scores_ = d.get("calibration_cv_brier", {})
        return obj


def adjust_for_prior(p: np.ndarray | float, prior: float, base_rate: float) -> np.ndarray:
    """Bayes' rule for a new base rate: shift the log-odds by logit(prior) - logit(base_rate)."""
    return _sigmoid(logit(p) + logit(prior) - logit(base_rate))
