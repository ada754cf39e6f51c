"""Writing the outputs of an attribution document: ``attribution.csv``, the plots, ``report.md``, ``attribution.json``.

Everything is drawn from the document alone, so :func:`write_outputs` rebuilds a finished run's
files from its ``attribution.json`` (``surrogateshap report --from DIR``) byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .document import load_attribution_document, ranks, validate_attribution_document
from .markdown import report_markdown
from .plots import (
    budget_trace_figure,
    figure_png,
    interactions_figure,
    slug,
    surrogate_cv_figure,
    values_figure,
)

__all__ = ["CSV_COLUMNS", "attribution_csv", "rebuild_outputs", "write_outputs"]

CSV_COLUMNS = ("utility", "contributor", "role", "n_examples", "value", "std", "rank", "higher_is_better")


def attribution_csv(doc: Mapping[str, Any]) -> str:
    """The long-form CSV of ``doc``: one row per (utility, contributor), rank 1 = largest value."""
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


def write_outputs(out_dir: str | os.PathLike, doc: Mapping[str, Any]) -> dict[str, Path]:
    """Validate ``doc`` and write it with its table, plots and report into ``out_dir``, atomically.

    Files: ``attribution.csv``; per utility ``values_<name>.png``, ``interactions_<name>.png``
    (when the attribution has interactions), ``surrogate_cv_<name>.png`` (when the
    document holds the surrogate's out-of-fold predictions) and ``budget_<name>.png`` (``budget="auto"``:
    the rounds); ``report.md``; and last
    ``attribution.json``, so that its presence means the set is complete. Every file goes
    through :func:`surrogateshap.io.atomic_write_bytes` (temporary file, then rename).
    ``<name>`` is the utility name made file-name safe.

    Returns the paths written, keyed by file name.
    """
    validate_attribution_document(doc)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def put_figure(file_name: str, fig: Any) -> None:
        if fig is None:
            return
        written[file_name] = atomic_write_bytes(out / file_name, figure_png(fig))

    written["attribution.csv"] = atomic_write_text(out / "attribution.csv", attribution_csv(doc))
    plot_files: dict[str, list[str]] = {}
    used: set[str] = set()
    for name in doc["utilities"]:
        stem = slug(name)
        base, k = stem, 2
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        before = set(written)
        put_figure(f"values_{stem}.png", values_figure(doc, name))
        put_figure(f"interactions_{stem}.png", interactions_figure(doc, name))
        put_figure(f"surrogate_cv_{stem}.png", surrogate_cv_figure(doc, name))
        put_figure(f"budget_{stem}.png", budget_trace_figure(doc, name))
        plot_files[name] = [f for f in written if f not in before]
    written["report.md"] = atomic_write_text(out / "report.md", report_markdown(doc, plot_files))
    written["attribution.json"] = atomic_write_json(out / "attribution.json", _strict_json(doc))
    return written


def rebuild_outputs(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Rebuild ``attribution.csv``, the plots and ``report.md`` of a finished run from its ``attribution.json``.

    Useful after editing the document (a contributor's ``role``) or a plot's code; the files
    are written to ``out_dir`` (default: ``run_dir`` itself).
    """
    doc = load_attribution_document(Path(run_dir) / "attribution.json")
    return write_outputs(run_dir if out_dir is None else out_dir, doc)


def _strict_json(doc: Mapping[str, Any]) -> Any:
    """``doc`` checked to be strict JSON (no NaN/Infinity literals), returned unchanged."""
    json.dumps(doc, allow_nan=False)
    return doc
