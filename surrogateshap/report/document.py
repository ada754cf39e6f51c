"""The ``attribution.json`` document: build it from attributions, validate it, read it back.

The schema is the one in DESIGN.md ("Contracts"); ``attribution_schema.json`` beside this
file is its JSON Schema (draft 2020-12). :func:`validate_attribution_document` checks the
schema plus what a JSON Schema cannot say: lengths that depend on the number of
contributors and the efficiency of the values.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..estimators import ESTIMATORS
from ..estimators.result import Attribution
from ..io import jsonable

SCHEMA_FILE = "attribution_schema.json"


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


# -- building -----------------------------------------------------------------------------------


def attribution_document(
    contributors: Sequence[Mapping[str, Any]],
    results: Sequence[UtilityResult],
    *,
    method: str,
    budget: int | None,
    timings: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
    n_coalitions: int | None = None,
) -> dict[str, Any]:
    """Build the ``attribution.json`` document (DESIGN.md schema) as a plain, JSON-ready dict.

    Parameters
    ----------
    contributors : one mapping per contributor with at least ``"id"`` and ``"n_examples"``;
        further keys (``"role"``: clean / corrupted / marker, ...) are kept.
    results : one :class:`UtilityResult` per utility; each attribution's players must equal
        the contributor ids, in the same order.
    method : the estimator's name (``"surrogateshap"``...).
    budget : the coalition budget the estimator was given (None when it had none).
    timings : seconds per stage (``{"bank": 12.3, "estimate": 4.5}``).
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
        "budget": None if budget is None else int(budget),
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
        "surrogate": {"holdout_r2": _clip(r2, None, 1.0), "holdout_spearman": _clip(spearman, -1.0, 1.0)},
        "lds": _clip(result.lds, -1.0, 1.0),
        "n_holdout": n_holdout,
        "n_evaluations": int(att.n_evaluations),
        "efficiency_gap": _float(values.sum() - (float(att.v_full) - float(att.v_empty))),
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
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(attribution_schema())
    problems = [
        f"{_where(err.absolute_path)}: {err.message}"
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if isinstance(doc, Mapping):
        problems += _semantic_problems(doc)
    if problems:
        raise ValueError(
            f"invalid attribution document ({len(problems)} problem(s)):\n" + "\n".join(f"- {p}" for p in problems)
        )


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
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    try:
        validate_attribution_document(doc)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return doc


def scalar_metrics(doc: Mapping[str, Any]) -> dict[str, float]:
    """The document's scalars as flat metric names, for experiment loggers.

    Per utility ``<utility>/lds``, ``/surrogate_r2``, ``/surrogate_spearman``, ``/v_empty``,
    ``/v_full``, ``/efficiency_gap``; and ``timings/<stage>``. Missing (null) numbers are left out.
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
        for key, value in candidates.items():
            if value is not None:
                metrics[f"{name}/{key}"] = float(value)
    for key, value in (doc.get("timings") or {}).items():
        if value is not None:
            metrics[f"timings/{key}"] = float(value)
    return metrics


# -- writing ------------------------------------------------------------------------------------

CSV_COLUMNS = ("utility", "contributor", "role", "n_examples", "value", "std", "rank", "higher_is_better")


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


def attribution_csv(doc: Mapping[str, Any]) -> str:
    """The long-form CSV of ``doc``: one row per (utility, contributor), rank 1 = largest value."""
    import csv
    import io

    from .markdown import ranks

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name, util in doc["utilities"].items():
        std = util.get("std")
        rank = ranks(util["values"])
        for i, contributor in enumerate(doc["contributors"]):
            value = util["values"][i]
            writer.writerow([
                name,
                contributor["id"],
                contributor.get("role", ""),
                contributor["n_examples"],
                "" if value is None else repr(float(value)),
                "" if std is None or std[i] is None else repr(float(std[i])),
                rank[i],
                "true" if util["higher_is_better"] else "false",
            ])
    return buffer.getvalue()


def write_outputs(
    out_dir: str | os.PathLike,
    doc: Mapping[str, Any],
    results: Sequence[UtilityResult] = (),
) -> dict[str, Path]:
    """Validate ``doc`` and write it with its table, plots and report into ``out_dir``, atomically.

    Files: ``attribution.csv``; per utility ``values_<name>.png``, ``interactions_<name>.png``
    (when the attribution has interactions) and ``surrogate_cv_<name>.png`` (when the
    matching result in ``results`` has a surrogate with out-of-fold predictions);
    ``report.md``; and last ``attribution.json``, so that its presence means the set is
    complete. Every file goes through :func:`surrogateshap.io.atomic_write_bytes` (temporary
    file, then rename). ``<name>`` is the utility name made file-name safe.

    Returns the paths written, keyed by file name.
    """
    from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
    from . import plots
    from .markdown import report_markdown

    validate_attribution_document(doc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {r.name: r for r in results}
    unknown = sorted(set(by_name) - set(doc["utilities"]))
    if unknown:
        raise ValueError(f"results for utilities {unknown} are not in the document ({sorted(doc['utilities'])}).")
    written: dict[str, Path] = {}

    def put_figure(file_name: str, fig: Any) -> None:
        if fig is None:
            return
        written[file_name] = atomic_write_bytes(out / file_name, plots.figure_png(fig))

    written["attribution.csv"] = atomic_write_text(out / "attribution.csv", attribution_csv(doc))
    plot_files: dict[str, list[str]] = {}
    used: set[str] = set()
    for name in doc["utilities"]:
        stem = plots.slug(name)
        base, k = stem, 2
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        before = set(written)
        put_figure(f"values_{stem}.png", plots.values_figure(doc, name))
        put_figure(f"interactions_{stem}.png", plots.interactions_figure(doc, name))
        result = by_name.get(name)
        if result is not None:
            put_figure(f"surrogate_cv_{stem}.png", plots.surrogate_cv_figure(result.attribution.surrogate, name))
        plot_files[name] = [f for f in written if f not in before]
    written["report.md"] = atomic_write_text(out / "report.md", report_markdown(doc, plot_files))
    written["attribution.json"] = atomic_write_json(out / "attribution.json", _strict_json(doc))
    return written


def _strict_json(doc: Mapping[str, Any]) -> Any:
    """``doc`` checked to be strict JSON (no NaN/Infinity literals), returned unchanged."""
    json.dumps(doc, allow_nan=False)
    return doc
