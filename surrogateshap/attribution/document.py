"""Building the ``attribution.json`` document from live results (its schema: ``report/attribution_schema.json``).

The document holds everything the report needs (values, errors, interactions, the surrogate's
cross-validated fit, LDS, timings, the membership's calibration), so :mod:`surrogateshap.report`
rebuilds every output file from it alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import AUTO_BUDGET
from ..estimators.result import Attribution
from ..io import jsonable

__all__ = ["UtilityResult", "attribution_document"]


@dataclass
class UtilityResult:
    """One utility's attribution and how it was checked.

    Attributes
    ----------
    name : the utility's name, e.g. ``"fid"`` or ``"marker_rate"``.
    attribution : its :class:`~surrogateshap.estimators.result.Attribution`; ``players``
        must be the contributor ids in order. ``.surrogate`` may be None (methods other
        than ``"surrogateshap"``).
    higher_is_better : True when a larger utility is a better model (Inception Score), False
        when smaller is better (FID, a spurious marker's rate).
    lds : linear datamodel score on held-out coalitions (Spearman, -1..1), if measured.
    n_holdout : number of held-out coalitions the LDS used.
    """

    name: str
    attribution: Attribution
    higher_is_better: bool
    lds: float | None = None
    n_holdout: int = 0


def attribution_document(
    contributors: Sequence[Mapping[str, Any]],
    results: Sequence[UtilityResult],
    *,
    method: str,
    budget: int | str | None,
    timings: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
    n_coalitions: int | None = None,
) -> dict[str, Any]:
    """Build the ``attribution.json`` document (schema: ``report/attribution_schema.json``) as a plain dict.

    Parameters
    ----------
    contributors : one mapping per contributor with at least ``"id"`` and ``"n_examples"``;
        further keys (``"role"``: clean / corrupted / marker, ...) are kept.
    results : one :class:`UtilityResult` per utility; each attribution's players must equal
        the contributor ids, in the same order.
    method : the estimator's name (``"surrogateshap"``...).
    budget : the coalition budget the estimator was given (None when it had none, ``"auto"`` when it chose
        its own: each utility's ``budget_trace`` then lists the rounds).
    timings : seconds per stage (``{"generation": 12.3, "utility_evaluation": 0.4, "estimation": 4.5}``).
    extra : more top-level keys (config, seeds...); a key that the document already has is
        an error rather than silently overwritten.
    n_coalitions : distinct coalitions evaluated; default: the largest ``n_evaluations``
        among the attributions (all utilities of a proxy game share their coalitions).

    Numbers become plain Python floats and ints; NaN and infinities become ``None`` (null).
    Raises ValueError on mismatched players, duplicate ids or utility names, or a missing key.
    """
    contribs = [_contributor_entry(i, c) for i, c in enumerate(contributors)]
    ids = [c["id"] for c in contribs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"contributor ids must be unique; repeated: {duplicates}.")
    if not results:
        raise ValueError("attribution_document needs at least one UtilityResult.")
    utilities: dict[str, Any] = {}
    for result in results:
        if result.name in utilities:
            raise ValueError(f"utility {result.name!r} appears twice among the results.")
        utilities[result.name] = _utility_entry(result, ids)
    if n_coalitions is None:
        n_coalitions = max(int(r.attribution.n_evaluations) for r in results)
    doc: dict[str, Any] = {
        "contributors": contribs,
        "utilities": utilities,
        "method": str(method),
        "budget": budget if budget is None or budget == AUTO_BUDGET else int(budget),
        "n_coalitions": int(n_coalitions),
        "timings": {str(k): _float(v) for k, v in timings.items()},
    }
    for key, value in (extra or {}).items():
        if key in doc:
            raise ValueError(f"extra key {key!r} would overwrite the document's own {key!r}; rename it.")
        doc[str(key)] = jsonable(value)
    return doc


def _contributor_entry(index: int, contributor: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("id", "n_examples") if k not in contributor]
    if missing:
        raise ValueError(f"contributor #{index} ({dict(contributor)!r}) lacks key(s) {missing}.")
    entry = {str(k): jsonable(v) for k, v in contributor.items()}
    entry["id"] = str(contributor["id"])
    n_examples = jsonable(contributor["n_examples"])
    if isinstance(n_examples, float) and n_examples.is_integer():
        n_examples = int(n_examples)
    entry["n_examples"] = n_examples
    return entry


def _utility_entry(result: UtilityResult, ids: list[str]) -> dict[str, Any]:
    att = result.attribution
    n = len(ids)
    if att.players is None:
        raise ValueError(
            f"utility {result.name!r}: the attribution has no player names; set attribution.players to the "
            f"contributor ids {ids}."
        )
    players = [str(p) for p in att.players]
    if players != ids:
        if len(players) != n:
            detail = f"{len(players)} players vs {n} contributors"
        else:
            wrong = [(k, p, c) for k, (p, c) in enumerate(zip(players, ids)) if p != c]
            detail = ", ".join(f"position {k}: player {p!r} vs contributor {c!r}" for k, p, c in wrong[:5])
            if len(wrong) > 5:
                detail += f" and {len(wrong) - 5} more"
        raise ValueError(
            f"utility {result.name!r}: attribution players {players} do not match the contributor ids {ids} "
            f"in order ({detail})."
        )
    values = np.asarray(att.values, dtype=np.float64).reshape(-1)
    std = None if att.std is None else np.asarray(att.std, dtype=np.float64).reshape(-1)
    inter = None if att.interactions is None else np.asarray(att.interactions, dtype=np.float64)
    if values.shape != (n,) or (std is not None and std.shape != (n,)):
        raise ValueError(f"utility {result.name!r}: values/std must have one entry per contributor ({n}).")
    if inter is not None and inter.shape != (n, n):
        raise ValueError(f"utility {result.name!r}: interactions must be {n} x {n}, got {inter.shape}.")
    r2, spearman = _surrogate_scores(att)
    n_holdout = int(result.n_holdout)
    if n_holdout < 0:
        raise ValueError(f"utility {result.name!r}: n_holdout must be >= 0, got {n_holdout}.")
    return {
        "values": [_float(v) for v in values],
        "std": None if std is None else [_float(v) for v in std],
        "v_empty": _float(att.v_empty),
        "v_full": _float(att.v_full),
        "higher_is_better": bool(result.higher_is_better),
        "interactions": None if inter is None else [[_float(v) for v in row] for row in inter],
        "surrogate": {
            "holdout_r2": _clip(r2, None, 1.0),
            "holdout_spearman": _clip(spearman, -1.0, 1.0),
            "out_of_fold": _out_of_fold(att),
        },
        "lds": _clip(result.lds, -1.0, 1.0),
        "n_holdout": n_holdout,
        "n_evaluations": int(att.n_evaluations),
        "budget_trace": _budget_trace(att),
        "efficiency_gap": _float(values.sum() - (float(att.v_full) - float(att.v_empty))),
    }


def _budget_trace(att: Attribution) -> dict[str, Any] | None:
    """``budget="auto"``'s rounds: budget, estimated error and change per round, the tolerance, converged."""
    rounds = att.diagnostics.get("budget_trace")
    if rounds is None:
        return None
    return {
        "tolerance": _float(att.diagnostics["tolerance"]),
        "converged": bool(att.diagnostics["converged"]),
        "rounds": [{"budget": int(r["budget"]), "error": _float(r["error"]), "change": _float(r["change"])}
                   for r in rounds],
    }


def _surrogate_scores(att: Attribution) -> tuple[float | None, float | None]:
    """Cross-validated (out-of-fold) R^2 and Spearman of the attribution's surrogate, if any."""
    surrogate = att.surrogate
    if surrogate is None:
        return None, None
    r2 = getattr(surrogate, "cv_r2_", None)
    spearman = getattr(surrogate, "cv_spearman_", None)
    if r2 is None:
        r2 = att.diagnostics.get("cv_r2")
    if spearman is None:
        spearman = att.diagnostics.get("cv_spearman")
    return _float(r2), _float(spearman)


def _out_of_fold(att: Attribution) -> dict[str, list[float]] | None:
    """The surrogate's cross-validated fit: each held-out coalition's value and out-of-fold prediction."""
    surrogate = att.surrogate
    actual = getattr(surrogate, "train_values_", None)
    predicted = getattr(surrogate, "cv_predictions_", None)
    if actual is None or predicted is None:
        return None
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    ok = np.isfinite(actual) & np.isfinite(predicted)  # the empty/full anchors are never held out
    if not ok.any():
        return None
    return {"values": actual[ok].tolist(), "predictions": predicted[ok].tolist()}


def _float(x: Any) -> float | None:
    """A plain float, or None for None / NaN / infinity."""
    if x is None:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


def _clip(x: Any, low: float | None, high: float | None) -> float | None:
    """Like :func:`_float`, clipping rounding overshoots (within 1e-9) back into [low, high]."""
    value = _float(x)
    if value is None:
        return None
    if high is not None and high < value <= high + 1e-9:
        return high
    if low is not None and low - 1e-9 <= value < low:
        return low
    return value
