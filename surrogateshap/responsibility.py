"""Responsibilities ``P(contributor | x, unit)`` for soft membership, from the training data.

Per shared unit (conditions held by the same contributors, ``surrogateshap.membership``) a
multinomial logistic regression is fitted on the holders' training features (the metrics'
extractor output), one class per holder, its L2 strength chosen by inner cross-validated
log-loss (``LogisticRegressionCV``) so that the probabilities stay calibrated on small units.
Trained on all of the unit's examples, its intercepts carry the data shares as class priors, so
the posterior is
``n_iu q_iu(x) / sum_j n_ju q_ju(x)`` as the soft proxy needs. Held-out calibration
(log-loss and accuracy from stratified cross-validation) is measured against the prior's
log-loss; a unit whose classifier does not beat the prior falls back to the priors with a
warning, and the values then equal the plain proxy's for that unit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .membership import ConditionUnits, SoftMembership

__all__ = ["MembershipSpec", "ResponsibilityModel", "fit_soft_membership", "membership_summary"]

CALIBRATIONS = (None, "temperature", "sigmoid", "isotonic")


class ResponsibilityModel(BaseEstimator):
    """Per-unit classifiers of which holder a sample looks like (scikit-learn estimator).

    Parameters
    ----------
    Cs : inverse L2 strengths tried by the inner cross-validation (an int: that many on a log
        grid), features standardised first.
    cv : folds of the held-out calibration estimate (fewer when a holder has fewer examples); the
        inner choice of C uses 3 folds.
    min_gain : how many nats per example the held-out log-loss must beat the prior's by; a
        unit that does not falls back to its priors (a warning says which).
    max_iter : solver iterations.
    seed : seed of the fold split.
    min_responsibility : responsibilities are floored at this and renormalised, so that a
        coalition always has some mass in the units it holds data in.
    calibration : None (the regression's own probabilities) or a method of scikit-learn's
        ``CalibratedClassifierCV`` (``"temperature"``, ``"sigmoid"``, ``"isotonic"``), fitted on
        inner cross-validation folds (at most 3) on top of the regression; for when the held-out
        log-loss shows the regression over- or under-confident. The reported held-out calibration
        is then that of the calibrated classifier.

    Fitted attributes: ``units_`` (the ``ConditionUnits``), ``classifiers_`` (unit id -> fitted
    pipeline or None for a fallback unit), ``calibration_`` (unit id -> held-out log_loss,
    prior_log_loss, accuracy, prior_accuracy, n, fallback).
    """

    def __init__(
        self,
        Cs: int | Sequence[float] = 10,
        cv: int = 5,
        min_gain: float = 0.01,
        max_iter: int = 2000,
        seed: int = 0,
        min_responsibility: float = 1e-6,
        calibration: str | None = None,
    ):
        self.Cs = Cs
        self.cv = cv
        self.min_gain = min_gain
        self.max_iter = max_iter
        self.seed = seed
        self.min_responsibility = min_responsibility
        self.calibration = calibration

    def _classifier(self, n_min: int) -> Any:
        """The per-unit classifier for a unit whose smallest holder has ``n_min`` examples."""
        calibration_folds = StratifiedKFold(max(2, min(3, n_min)), shuffle=True, random_state=self.seed)
        if self.calibration is not None:  # the regression sees (folds - 1) / folds of the examples
            n_min = n_min * (calibration_folds.n_splits - 1) // calibration_folds.n_splits
        inner = StratifiedKFold(max(2, min(3, n_min)), shuffle=True, random_state=self.seed)
        cs = self.Cs if isinstance(self.Cs, int) else list(self.Cs)
        regression = make_pipeline(
            StandardScaler(), LogisticRegressionCV(
                Cs=cs, cv=inner, scoring="neg_log_loss", max_iter=self.max_iter, l1_ratios=(0.0,),
                use_legacy_attributes=False,
            )
        )
        if self.calibration is None:
            return regression
        return CalibratedClassifierCV(regression, method=self.calibration, cv=calibration_folds)

    def fit(self, units: ConditionUnits, features: np.ndarray, example_ids: Sequence[str]) -> ResponsibilityModel:
        """Fit one classifier per shared unit on the features of its training examples.

        ``features`` (n, d) are the extractor's outputs of the training examples ``example_ids``;
        every example of a shared unit must be among them.
        """
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {CALIBRATIONS} (scikit-learn's CalibratedClassifierCV methods), "
                f"got {self.calibration!r}."
            )
        x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        row = {str(e): k for k, e in enumerate(example_ids)}
        if len(row) != x.shape[0]:
            raise ValueError(f"example_ids must be {x.shape[0]} distinct ids, one per feature row.")
        owner = {ex.example_id: ex.contributor for ex in units.contributors.examples}
        self.units_ = units
        self.classifiers_: dict[str, Any] = {}
        self.calibration_: dict[str, dict[str, Any]] = {}
        fallbacks = []
        for u, unit in enumerate(units.unit_ids):
            if units.holders(u).size < 2:
                continue
            ids = units.registry.example_ids(unit)
            missing = [e for e in ids if e not in row]
            if missing:
                raise ValueError(
                    f"unit {unit!r} needs the features of its {len(ids)} training examples; {len(missing)} are "
                    f"missing (e.g. {missing[:3]}); extract features for every training example."
                )
            xu = x[[row[e] for e in ids]]
            yu = np.array([owner[e] for e in ids])
            stats = self._calibrate(xu, yu)
            self.calibration_[unit] = stats
            if stats["fallback"]:
                fallbacks.append(unit)
                self.classifiers_[unit] = None
            else:
                self.classifiers_[unit] = self._classifier(int(np.unique(yu, return_counts=True)[1].min())).fit(xu, yu)
        if fallbacks:
            warnings.warn(
                f"the responsibility classifier cannot separate the holders of units {fallbacks[:10]} "
                f"(held-out log-loss not {self.min_gain} nats below the prior's); they use the data shares as "
                "responsibilities, so their holders get the plain proxy's values.",
                stacklevel=2,
            )
        return self

    def _calibrate(self, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        classes, counts = np.unique(y, return_counts=True)
        prior = counts / counts.sum()
        prior_loss = float(-(prior * np.log(prior)).sum())
        stats: dict[str, Any] = {
            "n": int(y.size), "prior_log_loss": prior_loss, "prior_accuracy": float(prior.max()),
            "log_loss": prior_loss, "accuracy": float(prior.max()), "fallback": True,
        }
        folds = min(int(self.cv), int(counts.min()))
        if folds < 2 or int(counts.min()) * (folds - 1) // folds < 2:
            return stats
        split = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
        inner_min = int(counts.min()) * (folds - 1) // folds
        proba = cross_val_predict(self._classifier(inner_min), x, y, cv=split, method="predict_proba")
        stats["log_loss"] = float(log_loss(y, proba, labels=classes))
        stats["accuracy"] = float((classes[proba.argmax(axis=1)] == y).mean())
        stats["fallback"] = bool(stats["log_loss"] > prior_loss - self.min_gain)
        return stats

    def membership(self, unit_index: np.ndarray, features: np.ndarray) -> SoftMembership:
        """The ``SoftMembership`` of bank samples: ``unit_index`` (N,) into ``units_.unit_ids``, features (N, d)."""
        units = self.units_
        unit_index = np.asarray(unit_index, dtype=np.int64)
        x = np.asarray(features, dtype=np.float64).reshape(len(unit_index), -1)
        column = {cid: k for k, cid in enumerate(units.contributor_ids)}
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, column, value) triplets
        fitted = np.zeros(len(units.unit_ids), dtype=bool)
        for u, unit in enumerate(units.unit_ids):
            rows = np.flatnonzero(unit_index == u)
            model = self.classifiers_.get(unit)
            if rows.size and model is not None:
                fitted[u] = True
                cols = np.array([column[c] for c in model.classes_])
                proba = np.maximum(model.predict_proba(x[rows]), self.min_responsibility)
                proba /= proba.sum(axis=1, keepdims=True)
                parts.append((np.repeat(rows, cols.size), np.tile(cols, rows.size), proba.ravel()))
        # one holder, or a fallback unit: the data shares
        shares = SoftMembership.shares(units, unit_index).responsibility.tocoo()
        keep = ~fitted[unit_index[shares.row]]
        parts.append((shares.row[keep], shares.col[keep], shares.data[keep]))
        rows, cols, values = (np.concatenate(p) for p in zip(*parts))
        merged = sparse.coo_array((values, (rows, cols)), shape=shares.shape)
        return SoftMembership(units.contributor_ids, units.unit_ids, units.counts, unit_index, merged)


def _stack(arrays: Sequence[Any]) -> np.ndarray:
    """Per-sample arrays side by side as float64 (n, sum of widths)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in arrays], axis=1)


def fit_soft_membership(
    units: ConditionUnits,
    bank: Any,
    extractors: Mapping[str, Callable[[Any], Any]],
    features: Sequence[str],
    training_images: Callable[[list[str]], Any],
    *,
    batch_size: int = 256,
    **options: Any,
) -> tuple[SoftMembership, ResponsibilityModel]:
    """Fit the responsibility classifier on the shared units' training images and apply it to ``bank``.

    ``features`` name bank arrays whose ``extractors`` also embed the training images (side by
    side, e.g. ``["embedding", "marker"]``); ``training_images(example_ids)`` returns them as the
    generator's images are given to the extractors. ``options`` go to :class:`ResponsibilityModel`.
    """
    import torch

    from .generation.module import match_module

    unknown = [f for f in features if f not in extractors or f not in bank.array_names]
    if not features or unknown:
        raise ValueError(
            f"membership.features {list(features)} must name extractors of the generation section that are in "
            f"the bank ({sorted(set(extractors) & set(bank.array_names))}); unknown: {unknown}."
        )
    if list(bank.contributor_ids) != units.unit_ids:
        raise ValueError("the bank was not generated per unit: plan it with SamplingPlan(registry, m, per_unit=True).")
    shared = [unit for u, unit in enumerate(units.unit_ids) if units.holders(u).size > 1]
    ids = [e for unit in shared for e in units.registry.example_ids(unit)]
    rows = []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            images = torch.as_tensor(training_images(ids[start : start + batch_size]))
            # on the extractor's device and dtype, as the bank's images were (a Trainer may have moved it)
            embedded = [extractors[f](match_module(extractors[f], images)) for f in features]
            rows.append(_stack([torch.as_tensor(e).detach().float().cpu().numpy() for e in embedded]))
    train = np.concatenate(rows) if rows else np.zeros((0, 1))
    model = ResponsibilityModel(**options).fit(units, train, ids)
    return model.membership(bank.contributor_index, _stack([bank[f] for f in features])), model


def membership_summary(units: ConditionUnits, model: ResponsibilityModel) -> dict[str, Any]:
    """The ``membership`` entry of ``attribution.json``: each shared unit, its holders and calibration."""
    shared = []
    for u, unit in enumerate(units.unit_ids):
        holders = units.holders(u)
        if holders.size > 1:
            shared.append({
                "unit": unit,
                "holders": {units.contributor_ids[i]: int(units.counts[i, u]) for i in holders},
                **model.calibration_[unit],
            })
    return {"kind": "soft", "calibration": model.calibration, "n_units": len(units.unit_ids), "shared_units": shared,
            "fallback_units": [s["unit"] for s in shared if s["fallback"]]}


class MembershipSpec:
    """How bank samples are shared among contributors who hold the same conditions: the
    ``membership`` section of a config, also taken by ``SurrogateShapCallback``.

    Parameters
    ----------
    kind : ``"plain"`` (the paper's setting: the bank is generated per contributor, one contributor
        per sample), ``"soft"`` (generated per unit of shared conditions, every sample weighted by a
        :class:`ResponsibilityModel` fitted on ``features`` of ``training_images``) or ``"shares"``
        (per unit, responsibilities = data shares: the paper's proxy on the same bank).
    features : ``kind="soft"``: bank arrays (extractor names) the classifier reads, side by side.
    training_images : ``kind="soft"``: a callable ``example ids -> images`` as the extractors take them
        (e.g. ``ImageFolderSource``), or its ``{class_path, init_args}`` mapping.
    classifier : ``kind="soft"``: options of :class:`ResponsibilityModel`.

    ``model_`` is the responsibility model once :meth:`apply` fitted it; later calls (a callback
    attributing every few epochs) reuse it, since it depends on the training data only.
    """

    KEYS = ("kind", "features", "training_images", "classifier")  # the config section's keys
    KINDS = ("plain", "soft", "shares")

    def __init__(
        self,
        kind: str = "plain",
        features: Sequence[str] = (),
        training_images: Any = None,
        classifier: Mapping[str, Any] | None = None,
    ) -> None:
        from .config import instantiate

        if kind not in self.KINDS:
            raise ValueError(f"membership.kind must be 'plain', 'soft' or 'shares', got {kind!r}.")
        self.kind = kind
        self.features = [str(f) for f in features or ()]
        self.training_images = instantiate(training_images, "membership.training_images")
        self.classifier = dict(classifier or {})
        if kind == "soft" and (not self.features or not callable(self.training_images)):
            raise ValueError(
                "membership.kind 'soft' needs `features` (extractor names the classifier reads) and "
                "`training_images` (example ids -> images, e.g. surrogateshap.generation.ImageFolderSource)."
            )
        self.model_: ResponsibilityModel | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | MembershipSpec | None) -> MembershipSpec:
        """Build from a config section (None: plain); unknown keys are an error naming the keys."""
        if isinstance(section, MembershipSpec):
            return section
        section = dict(section or {})
        unknown = sorted(set(section) - set(cls.KEYS))
        if unknown:
            raise ValueError(f"unknown membership key(s) {unknown}; the keys are {list(cls.KEYS)}.")
        return cls(**section)

    def apply(
        self, units: ConditionUnits | None, bank: Any, extractors: Mapping[str, Callable[[Any], Any]]
    ) -> tuple[SoftMembership | None, dict[str, Any] | None]:
        """The bank's ``SoftMembership`` and its ``attribution.json`` entry (both None for ``plain``)."""
        if self.kind == "plain":
            return None, None
        if units is None or list(bank.contributor_ids) != units.unit_ids:
            raise ValueError(
                f"membership.kind {self.kind!r} needs a bank generated per unit of shared conditions: plan "
                "it with SamplingPlan(registry, m, per_unit=True)."
            )
        if self.kind == "shares":
            info = {"kind": "shares", "n_units": len(units.unit_ids), "shared_units": [], "fallback_units": []}
            return SoftMembership.shares(units, bank.contributor_index), info
        if self.model_ is None or self.model_.units_ is not units:
            membership, self.model_ = fit_soft_membership(
                units, bank, extractors, self.features, self.training_images, **self.classifier
            )
        else:
            membership = self.model_.membership(bank.contributor_index, _stack([bank[f] for f in self.features]))
        return membership, membership_summary(units, self.model_)
