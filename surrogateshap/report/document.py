"""The ``attribution.json`` document: its schema, validation, reading, and the views reports take of it.

``attribution_schema.json`` beside this file is its JSON Schema (draft 2020-12);
:func:`validate_attribution_document` checks the schema plus what a JSON Schema cannot say:
lengths that depend on the number of contributors and the efficiency of the values. The
document is built from live results by :mod:`surrogateshap.attribution.document`; everything
here reads the document alone, so every output can be rebuilt from ``attribution.json``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..estimators import ESTIMATORS

SCHEMA_FILE = "attribution_schema.json"


# -- validating ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def attribution_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``attribution.json``, shipped with the package."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def validate_attribution_document(doc: Mapping[str, Any]) -> None:
    """Check ``doc`` against the schema, the per-contributor lengths and efficiency.

    Beyond the JSON Schema: ``values`` and ``std`` have one entry per contributor,
    ``interactions`` is n x n, contributor ids are unique, and ``sum(values)`` equals
    ``v_full - v_empty`` within ``1e-6 * max(1, |v_full - v_empty|)`` (not required of
    leave-one-out, ``method == "loo"``, whose values are not efficient).

    Raises ValueError listing every problem found, one per line.
    """
    problems = attribution_document_problems(doc)
    if problems:
        raise ValueError(
            f"invalid attribution document ({len(problems)} problem(s)):\n" + "\n".join(f"- {p}" for p in problems)
        )


def attribution_document_problems(doc: Any) -> list[str]:
    """Every problem :func:`validate_attribution_document` would raise, one string each (empty: valid).

    >>> attribution_document_problems({"schema_version": 1})[:1]  # doctest: +ELLIPSIS
    ["document: 'contributors' is a required property"]
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(attribution_schema())
    problems = [
        f"{_where(err.absolute_path)}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if isinstance(doc, Mapping):
        problems += _semantic_problems(doc)
    return problems


def _where(path: Sequence[Any]) -> str:
    return "document" if not path else "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _semantic_problems(doc: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    contributors = doc.get("contributors")
    if not isinstance(contributors, list):
        return problems
    n = len(contributors)
    ids = [c.get("id") for c in contributors if isinstance(c, Mapping)]
    repeated = sorted({str(i) for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"contributors: ids must be unique; repeated: {repeated}")
    utilities = doc.get("utilities")
    if not isinstance(utilities, Mapping):
        return problems
    method = ESTIMATORS.get(doc.get("method"))
    efficient = method is None or method.efficient
    for name, util in utilities.items():
        if not isinstance(util, Mapping):
            continue
        where = f"utilities.{name}"
        values = util.get("values")
        if isinstance(values, list) and len(values) != n:
            problems.append(f"{where}.values: {len(values)} entries for {n} contributors")
        std = util.get("std")
        if isinstance(std, list) and len(std) != n:
            problems.append(f"{where}.std: {len(std)} entries for {n} contributors")
        inter = util.get("interactions")
        if isinstance(inter, list) and (len(inter) != n or any(not isinstance(r, list) or len(r) != n for r in inter)):
            shape = f"{len(inter)} rows of lengths {sorted({len(r) for r in inter if isinstance(r, list)})}"
            problems.append(f"{where}.interactions: must be {n} x {n}, got {shape}")
        fit = (util.get("surrogate") or {}).get("out_of_fold")
        pairs = [fit.get("values"), fit.get("predictions")] if isinstance(fit, Mapping) else []
        if all(isinstance(p, list) for p in pairs) and len(pairs) == 2 and len(pairs[0]) != len(pairs[1]):
            problems.append(f"{where}.surrogate.out_of_fold: {len(pairs[0])} values but {len(pairs[1])} predictions")
        v_empty, v_full = util.get("v_empty"), util.get("v_full")
        if not (isinstance(values, list) and _all_numbers(values) and _all_numbers([v_empty, v_full])):
            continue
        total, target = math.fsum(values), v_full - v_empty
        gap = total - target
        tolerance = 1e-6 * max(1.0, abs(target))
        if efficient and abs(gap) > tolerance:
            problems.append(
                f"{where}: efficiency violated: sum(values) = {total:.9g} but v_full - v_empty = {target:.9g} "
                f"(gap {gap:.3g}, tolerance {tolerance:.3g})"
            )
        reported = util.get("efficiency_gap")
        if _all_numbers([reported]) and abs(reported - gap) > tolerance:
            problems.append(
                f"{where}.efficiency_gap: says {reported:.9g} but sum(values) - (v_full - v_empty) = {gap:.9g}"
            )
    return problems


def _all_numbers(items: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in items)


def load_attribution_document(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``attribution.json`` at ``path``, validate it and return it.

    Raises ValueError (with every problem) when the file is not a valid attribution document.
    """
    from ..tables import read_text

    path = Path(path)
    fix = "Rewrite it with the run that made it (or restore it), or edit the named entries."
    text = read_text(path, "attribution document", fix)
    try:
        doc = json.loads(text, parse_constant=_not_json, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}. {fix}") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}. {fix}") from None
    problems = attribution_document_problems(doc)
    if problems:
        listed = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise ValueError(f"{path} is not a valid attribution document ({len(problems)} problem(s)): {listed}. {fix}")
    return doc


def _not_json(constant: str) -> float:
    raise ValueError(f"holds {constant}, which is not a JSON number (a finite number or null is)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"holds {text}, which overflows a float (a finite number or null is expected)")
    return value


def scalar_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    """The document's scalars as flat metric names, for experiment loggers.

    Per utility ``<utility>/lds``, ``/surrogate_r2``, ``/surrogate_spearman``, ``/v_empty``,
    ``/v_full``, ``/efficiency_gap``, with ``budget="auto"`` ``/coalitions`` and ``/estimated_error`` (the last
    round's); and ``timings/<stage>``. Missing (null) numbers are left out.
    """
    metrics: dict[str, float] = {}
    for name, util in doc["utilities"].items():
        surrogate = util.get("surrogate") or {}
        candidates = {
            "lds": util.get("lds"),
            "surrogate_r2": surrogate.get("holdout_r2"),
            "surrogate_spearman": surrogate.get("holdout_spearman"),
            "v_empty": util.get("v_empty"),
            "v_full": util.get("v_full"),
            "efficiency_gap": util.get("efficiency_gap"),
        }
        if util.get("budget_trace"):
            last = util["budget_trace"]["rounds"][-1]
            candidates.update({"coalitions": last["budget"], "estimated_error": last["error"]})
        for key, value in candidates.items():
            if value is not None:
                metrics[f"{name}/{key}"] = float(value)
    for key, value in (doc.get("timings") or {}).items():
        if value is not None:
            metrics[f"timings/{key}"] = float(value)
    return metrics


def ranks(values: Sequence[float | None]) -> list[int]:
    """Rank of each value, 1 = largest; ties share the smallest rank; missing values rank last.

    >>> ranks([0.5, None, 2.0, 0.5])
    [2, 4, 1, 2]
    """
    array = np.array([-np.inf if v is None else v for v in values], dtype=np.float64)
    return [int(1 + np.sum(array > v)) for v in array]


#: columns of :func:`shared_unit_rows`
SHARED_UNIT_COLUMNS = ("unit", "holders", "log_loss", "prior_log_loss", "accuracy", "prior_accuracy", "fallback")


def shared_unit_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """One row per shared unit of the document's soft membership (``SHARED_UNIT_COLUMNS``; holders as
    ``"id (examples), ..."``): the responsibility classifier's held-out fit. Empty without one."""
    membership = doc.get("membership") or {}
    return [
        [unit["unit"], ", ".join(f"{k} ({v})" for k, v in unit["holders"].items()),
         *(unit[c] for c in SHARED_UNIT_COLUMNS[2:])]
        for unit in membership.get("shared_units") or []
    ]
