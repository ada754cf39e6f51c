"""The attribution service: a bank, its utilities and ``v_empty`` in, every utility's values and the document out.

The command line, the configured pipeline and both Lightning callbacks call :func:`attribute_bank`;
nothing else turns a bank into contributor values.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bank import ContributorBank
from ..coalitions import sample_coalitions
from ..evaluation import lds
from ..games import CachedGame, ProxyGame
from ..membership import ConditionUnits, SoftMembership
from ..report import write_outputs
from ..responsibility import MembershipSpec
from ..threads import shared_cores
from .document import UtilityResult, attribution_document
from .settings import EstimatorSettings

__all__ = ["AttributionResult", "attribute_bank", "check_v_empty", "contributor_entries", "holdout_coalitions",
           "resolve_v_empty"]


def holdout_coalitions(n_players: int, n_holdout: int, seed: int) -> np.ndarray:
    """``n_holdout`` distinct coalitions drawn with the datamodel distribution (alpha = 0.5), for LDS.

    Drawn from a seed stream separate from the estimator's, so they are held out from its fit
    up to chance coincidences; the empty and the full coalition are left out.

    >>> holdout_coalitions(6, 4, seed=0).sum(axis=1)
    array([3, 3, 3, 3])
    """
    sample = sample_coalitions(n_players, n_holdout + 2, "datamodel", seed=seed + 7919, alpha=0.5)
    masks = sample.masks
    return masks[masks.any(axis=1) & ~masks.all(axis=1)]


def check_v_empty(
    utilities: Sequence[str], v_empty: float | Mapping[str, float] | None, has_base: bool
) -> dict[str, float]:
    """The ``v_empty`` numbers given, checked: finite numbers, for known utilities, and every utility
    covered unless a base model's bank will measure the rest (``has_base``).

    >>> check_v_empty(["fid", "quality"], {"fid": 300}, has_base=True)
    {'fid': 300.0}
    >>> check_v_empty(["fid"], {"fid": "base_model"}, has_base=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: v_empty.fid must be a finite number, got 'base_model'; ...
    """
    names = list(utilities)
    if v_empty is not None and not isinstance(v_empty, Mapping):
        v_empty = {name: v_empty for name in names}
    given = {str(k): v for k, v in dict(v_empty or {}).items() if v is not None}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"v_empty names unknown utilities {unknown}; the utilities are {sorted(names)}.")
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError(
                f"v_empty.{name} must be a finite number, got {value!r}; to measure it with the base model, leave "
                "the utility out of v_empty and give a `base` section (a backend of the base model)."
            )
    missing = [name for name in names if name not in given]
    if missing and not has_base:
        raise ValueError(
            f"no v_empty for utilities {missing}: give v_empty (a number, or name -> number) or a bank of the base "
            "model (in a config: a `base` section), which measures the empty coalition."
        )
    return {name: float(value) for name, value in given.items()}


def resolve_v_empty(
    utilities: Sequence[str],
    v_empty: float | Mapping[str, float] | None = None,
    base_bank: ContributorBank | None = None,
) -> dict[str, float | ContributorBank]:
    """Each utility's empty-coalition value: a number from ``v_empty`` (one for all, or name -> number), else
    the bank of the base model (before fine-tuning, or the untrained network), which measures it
    (checked by :func:`check_v_empty`).

    >>> resolve_v_empty(["fid", "quality"], 0.0)
    {'fid': 0.0, 'quality': 0.0}
    >>> resolve_v_empty(["fid", "quality"], {"fid": 300.0})
    Traceback (most recent call last):
    ...
    ValueError: no v_empty for utilities ['quality']: ...
    """
    given = check_v_empty(utilities, v_empty, base_bank is not None)
    return {name: given.get(name, base_bank) for name in utilities}


def contributor_entries(
    ids: Sequence[str], n_examples: Mapping[str, float], roles: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The document's contributor list: id, n_examples and, where known, role.

    >>> contributor_entries(["a", "b"], {"a": 3, "b": 1}, roles={"b": "marker"})
    [{'id': 'a', 'n_examples': 3}, {'id': 'b', 'n_examples': 1, 'role': 'marker'}]
    """
    roles = dict(roles or {})
    return [{"id": cid, "n_examples": n_examples[cid], **({"role": roles[cid]} if cid in roles else {})}
            for cid in ids]


@dataclass
class AttributionResult:
    """What :func:`attribute_bank` produced.

    Attributes
    ----------
    results : one :class:`~surrogateshap.attribution.document.UtilityResult` per utility.
    document : the ``attribution.json`` document (everything the report needs).
    membership : the bank's ``SoftMembership`` with shared conditions, else None.
    timings : seconds per stage (those in the document, and any measured after it was built).
    """

    results: list[UtilityResult]
    document: dict[str, Any]
    membership: SoftMembership | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_results(
        cls,
        results: Sequence[UtilityResult],
        contributors: Sequence[Mapping[str, Any]],
        settings: EstimatorSettings,
        *,
        timings: Mapping[str, float | None] | None = None,
        extra: Mapping[str, Any] | None = None,
        membership: SoftMembership | None = None,
    ) -> AttributionResult:
        """Wrap attributions made elsewhere (e.g. from coalitions evaluated by retraining) with their document."""
        kept = {k: float(v) for k, v in (timings or {}).items() if v is not None}
        n = len(contributors)
        document = attribution_document(
            contributors, results, method=settings.method, budget=settings.resolved_budget(n), timings=kept,
            extra=extra,
        )
        return cls(list(results), document, membership, kept)

    def write(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``attribution.json``, ``attribution.csv``, the plots, ``report.md`` (and ``membership.npz``)."""
        paths = write_outputs(out_dir, self.document)
        if self.membership is not None:
            paths["membership.npz"] = self.membership.save(Path(out_dir) / "membership.npz")
        return paths


@dataclass(frozen=True)
class _UtilityTask:
    """Attribute one utility of a bank (what :func:`attribute_bank` maps over its utilities)."""

    bank: ContributorBank
    weights: Sequence[float] | Mapping[str, float] | None
    soft: SoftMembership | None
    estimator: Any
    holdout: np.ndarray | None
    players: list[str]

    def __call__(self, name: str, utility: Any, v_empty: float | ContributorBank) -> tuple[UtilityResult, float, float]:
        """The utility's result, its evaluation seconds and its fitting seconds."""
        metric, estimator = copy.deepcopy(utility), copy.deepcopy(self.estimator)  # each thread its own
        game = CachedGame(ProxyGame(self.bank, metric, v_empty, weights=self.weights, membership=self.soft))
        # the estimator's evaluations and its fitting are timed apart through the cache's own clock
        start = time.perf_counter()
        attribution = estimator.estimate(game)
        total = time.perf_counter() - start
        attribution.players = list(self.players)
        seconds = game.seconds
        score = None
        if self.holdout is not None and len(self.holdout) >= 3:
            tic = time.perf_counter()
            observed = game.game(self.holdout)
            seconds += time.perf_counter() - tic
            score = lds(attribution, self.holdout, observed)
        higher = getattr(metric, "higher_is_better", None)
        result = UtilityResult(
            name=name, attribution=attribution, higher_is_better=bool(higher) if higher is not None else True,
            lds=score, n_holdout=0 if self.holdout is None else int(len(self.holdout)),
        )
        return result, seconds, total - game.seconds


def attribute_bank(
    bank: ContributorBank,
    utilities: Mapping[str, Any],
    v_empty: Mapping[str, float | ContributorBank],
    settings: EstimatorSettings | Mapping[str, Any] | None = None,
    *,
    membership: MembershipSpec | Mapping[str, Any] | None = None,
    units: ConditionUnits | None = None,
    extractors: Mapping[str, Any] | None = None,
    roles: Mapping[str, str] | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    timings: Mapping[str, float | None] | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> AttributionResult:
    """Attribute every utility on ``bank``: one proxy game each, estimated, scored by LDS, in one document.

    Parameters
    ----------
    bank : the contributor bank (per unit of shared conditions with a membership).
    utilities : name -> fresh ``ContributorMetric`` (deep-copied: the caller's are left untouched).
    v_empty : name -> the empty coalition's value, a number or a bank of the base model
        (:func:`resolve_v_empty` builds it).
    settings : :class:`EstimatorSettings` (or its config section).
    membership : contributors who share conditions: a ``MembershipSpec`` or the config's
        ``membership`` section; ``units`` (``plan.units`` of the ``SamplingPlan(registry, m, per_unit=True)``
        the bank was generated from) and, for ``kind: soft``, the ``extractors`` of its features come with it.
    roles : contributor id -> role, written next to each contributor.
    weights : contributor weights (default: data sizes; not with a membership).
    timings : seconds of earlier stages (generation...) to record in the document.
    extra : more top-level document keys.
    progress : a progress bar over the utilities.

    The utilities are attributed ``settings.n_jobs`` at a time (default: one per core), in threads
    that share the cores; the values do not depend on how many.
    """
    from tqdm.auto import tqdm

    settings = EstimatorSettings.from_config(settings)
    spec = MembershipSpec.from_config(membership)
    all_timings = {k: float(v) for k, v in (timings or {}).items() if v is not None}
    tic = time.perf_counter()
    soft, info = spec.apply(units, bank, extractors or {})
    if soft is not None:
        all_timings["membership"] = time.perf_counter() - tic
    missing = [name for name in utilities if name not in v_empty]
    if missing:
        raise ValueError(f"v_empty gives no value for utilities {missing}; give one per utility.")
    players = bank.contributor_ids if soft is None else soft.contributor_ids
    holdout = holdout_coalitions(len(players), settings.n_holdout, settings.seed) if settings.n_holdout else None
    task = _UtilityTask(bank, weights, soft, settings.estimator(), holdout, list(players))
    names = list(utilities)
    with shared_cores(settings.jobs_for(len(names))) as pool:
        outcomes = pool.map(task, names, (utilities[name] for name in names), (v_empty[name] for name in names))
        results, evaluation, estimation = [], 0.0, 0.0
        for result, seconds, fitting in tqdm(outcomes, total=len(names), desc="attributing", unit="utility",
                                             disable=not progress):
            results.append(result)
            evaluation += seconds
            estimation += fitting
    # summed over the utilities (threads overlap them: the sums can exceed the wall time)
    all_timings.update({"utility_evaluation": evaluation, "estimation": estimation})
    if soft is None:
        n_examples = bank.n_examples
    else:
        n_examples = dict(zip(players, soft.counts.sum(axis=1).tolist()))
    return AttributionResult.from_results(
        results, contributor_entries(players, n_examples, roles), settings, timings=all_timings,
        extra={"bank_samples": len(bank), **dict(extra or {}), **({"membership": info} if info else {})},
        membership=soft,
    )
