"""``report.md``: a human-readable summary of an attribution document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..checks import AUTO_BUDGET
from .document import ranks, shared_unit_rows

#: up to this many contributors the table lists everyone; beyond, the ``TABLE_TOP_K`` largest and smallest values
TABLE_ALL_UP_TO = 60
TABLE_TOP_K = 25

_PLOT_LABELS = {
    "values_": "values per contributor",
    "interactions_": "pairwise interactions",
    "surrogate_cv_": "surrogate out-of-fold fit",
    "budget_": "budget chosen in rounds",
}


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool) or isinstance(x, int):
        return str(x)
    return f"{float(x):.{digits}g}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(doc: Mapping[str, Any], plot_files: Mapping[str, Sequence[str]] | None = None) -> str:
    """The markdown report of ``doc``.

    ``plot_files`` maps a utility name to the PNG file names (relative to the report) drawn
    for it; each is linked as an image.
    """
    plot_files = plot_files or {}
    contributors = doc["contributors"]
    utilities = doc["utilities"]
    n = len(contributors)
    has_role = any("role" in c for c in contributors)
    lines = ["# Contributor attribution", ""]
    budget = doc.get("budget")
    budget_text = ("a budget chosen in rounds: see each utility" if budget == AUTO_BUDGET
                   else f"a budget of {budget} coalitions" if budget is not None else "no coalition budget")
    lines.append(
        f"Shapley values of **{n} contributors** for **{len(utilities)} "
        f"utilit{'y' if len(utilities) == 1 else 'ies'}** ({', '.join(f'`{u}`' for u in utilities)}), "
        f"estimated with `{doc['method']}` from {doc['n_coalitions']} evaluated coalitions ({budget_text}). "
        "A contributor's value is its share of the change from the empty coalition's utility (`v_empty`) to the "
        "full model's (`v_full`); the values sum to that change. A positive value means the contributor "
        "raises the utility: good where higher is better, harmful where lower is better (e.g. FID)."
    )
    lines.append("")
    lines += _membership_section(doc)
    for name, util in utilities.items():
        lines += _utility_section(name, util, contributors, has_role, plot_files.get(name, ()))
    timings = doc.get("timings") or {}
    if timings:
        lines += ["## Timings", "", "| stage | seconds |", "| --- | ---: |"]
        lines += [f"| {_cell(k)} | {_fmt(v)} |" for k, v in timings.items()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _membership_section(doc: Mapping[str, Any]) -> list[str]:
    """Shared conditions: each shared unit's holders and the responsibility classifier's held-out fit."""
    membership = doc.get("membership")
    if not membership:
        return []
    kind = membership.get("kind")
    lines = ["## Shared conditions", ""]
    if kind == "shares":
        return lines + [f"The paper's proxy on {membership.get('n_units')} units of shared conditions: a coalition "
                        "keeps a unit's samples uniformly, weighted by its data there.", ""]
    rows = shared_unit_rows(doc)
    lines += [
        f"Soft membership over {membership.get('n_units')} units, {len(rows)} shared: each sample of a shared unit "
        "is weighted by its holders' responsibilities, from a classifier"
        + (f" ({calibration}-calibrated)" if (calibration := membership.get("calibration")) else "")
        + " with the held-out (cross-validated) fit below. A unit marked *fallback* did not beat its prior and "
        "uses the data shares (the plain proxy).", "",
        "| unit | holders (examples) | log-loss | prior log-loss | accuracy | prior accuracy | fallback |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for unit, holders, *fit, fallback in rows:
        lines.append(f"| {_cell(unit)} | {_cell(holders)} | " + " | ".join(_fmt(v) for v in fit)
                     + f" | {'yes' if fallback else 'no'} |")
    return lines + [""]


def _utility_section(name: str, util: Mapping[str, Any], contributors: Sequence[Mapping[str, Any]], has_role: bool,
                     plots: Sequence[str]) -> list[str]:
    values = util["values"]
    std = util.get("std")
    direction = "higher" if util["higher_is_better"] else "lower"
    surrogate = util.get("surrogate") or {}
    lines = [f"## `{name}` ({direction} is better)", ""]
    facts = [
        f"v_empty = {_fmt(util['v_empty'])}",
        f"v_full = {_fmt(util['v_full'])}",
        f"change = {_fmt(_diff(util['v_full'], util['v_empty']))}",
        f"efficiency gap = {_fmt(util.get('efficiency_gap'), 3)}",
        f"coalitions evaluated = {util.get('n_evaluations')}",
    ]
    trace = util.get("budget_trace")
    if trace:
        last = trace["rounds"][-1]
        facts.append(f"budget auto: {len(trace['rounds'])} round(s), "
                     + ("converged" if trace["converged"] else "stopped at max_budget")
                     + f" at {last['budget']} coalitions, estimated relative error {_fmt(last['error'], 3)}"
                     + f" (tolerance {_fmt(trace['tolerance'], 3)})")
    lds = util.get("lds")
    facts.append(f"LDS = {_fmt(lds, 3)} on {util.get('n_holdout', 0)} held-out coalitions" if lds is not None
                 else "LDS = not measured")
    if surrogate.get("holdout_r2") is not None or surrogate.get("holdout_spearman") is not None:
        facts.append(
            f"surrogate cross-validated R^2 = {_fmt(surrogate.get('holdout_r2'), 3)}, "
            f"Spearman = {_fmt(surrogate.get('holdout_spearman'), 3)}"
        )
    else:
        facts.append("surrogate: none")
    lines += [f"- {fact}" for fact in facts]
    lines.append("")
    rank = ranks(values)
    order = sorted(range(len(values)), key=lambda i: rank[i])
    header = ["rank", "contributor"] + (["role"] if has_role else []) + ["n_examples", "value ± std"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join("---:" if h in ("rank", "n_examples", "value ± std") else "---" for h in header)
                 + " |")
    skipped = len(order) - 2 * TABLE_TOP_K if len(order) > TABLE_ALL_UP_TO else 0
    for position, i in enumerate(order):
        if skipped and TABLE_TOP_K <= position < len(order) - TABLE_TOP_K:
            if position == TABLE_TOP_K:
                gap = [f"... {skipped} more in attribution.csv"] + [""] * (len(header) - 1)
                lines.append("| " + " | ".join(gap) + " |")
            continue
        c = contributors[i]
        value = _fmt(values[i])
        if std is not None and std[i] is not None:
            value += f" ± {_fmt(std[i], 2)}"
        row = [str(rank[i]), _cell(c["id"])] + ([_cell(c.get("role", ""))] if has_role else [])
        row += [_fmt(c["n_examples"]), value]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for plot in plots:
        kind = next((label for prefix, label in _PLOT_LABELS.items() if plot.startswith(prefix)), "plot")
        lines += [f"![{name}: {kind}]({plot})", ""]
    return lines


def _diff(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)
