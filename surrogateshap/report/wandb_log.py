"""Weights & Biases (and other Lightning loggers) for an attribution document.

W&B runs offline unless the user is logged in, writes under the output folder, and never
stops the attribution: when it cannot start, the caller gets ``None`` and a message saying
that the files are still written.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..interrupts import RunInterrupted
from .document import SHARED_UNIT_COLUMNS, scalar_metrics, shared_unit_rows
from .plots import shown_contributors


def _logged_in(wandb: Any) -> bool:
    """True when an API key is at hand (environment or ``wandb login``); never contacts the server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return bool(wandb.api.api_key)
    except Exception:
        return False


REACH_TIMEOUT_S = 5.0
INIT_TIMEOUT_S = 30.0


def _server_reachable(timeout: float) -> str:
    """An empty string when the W&B server (``WANDB_BASE_URL``, default https://api.wandb.ai) answers an HTTP
    request within ``timeout`` seconds (any status), else why not."""
    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return ""
    except urllib.error.HTTPError:
        return ""  # it answered
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        return f"{url} cannot be reached ({reason}; waited up to {timeout:g} s)"


def wandb_mode(timeout: float = REACH_TIMEOUT_S) -> tuple[str, str]:
    """The W&B mode a run will use and, when it differs from what was asked, a one-line message why.

    ``WANDB_MODE`` when set; otherwise ``"online"`` if the user is logged in (an API key in
    ``WANDB_API_KEY`` or from ``wandb login``) and ``"offline"`` if not. An online mode whose
    server does not answer within ``timeout`` seconds becomes offline (W&B itself would retry for
    minutes), with the message. Call it before long work, so that the user hears it at once.

    >>> mode, message = wandb_mode(timeout=1.0)
    >>> mode in {"online", "offline", "disabled", "dryrun"}
    True
    """
    os.environ.setdefault("WANDB_SILENT", "true")
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode:
        mode = env_mode
    else:
        import wandb

        mode = "online" if _logged_in(wandb) else "offline"
    if mode != "online":
        return mode, ""
    reason = _server_reachable(timeout)
    if reason:
        return "offline", f"W&B is set to online but {reason}: logging offline; upload later with `wandb sync`."
    return mode, ""


def start_wandb_run(
    out_dir: str | os.PathLike,
    *,
    project: str = "surrogateshap",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    mode: str | None = None,
) -> tuple[Any | None, str]:
    """Start a W&B run writing under ``out_dir``; returns ``(run or None, message)``.

    ``mode`` defaults to :func:`wandb_mode`'s (offline runs land in ``out_dir/wandb/offline-run-*``;
    ``wandb sync`` uploads them later); ``wandb.init`` waits at most ``INIT_TIMEOUT_S`` seconds.
    ``WANDB_SILENT`` defaults to true. Never raises: on any failure the run is None and the
    message says why and that the outputs are still written to ``out_dir``.
    """
    out_dir = Path(out_dir)
    try:
        note = ""
        if mode is None:
            mode, note = wandb_mode()
        import wandb

        out_dir.mkdir(parents=True, exist_ok=True)
        kwargs = {"project": project, "name": name, "config": dict(config) if config is not None else None,
                  "dir": str(out_dir)}
        try:
            run = wandb.init(**kwargs, mode=mode, settings=wandb.Settings(init_timeout=INIT_TIMEOUT_S))
        except Exception as err:  # noqa: BLE001 - an online run that cannot start is logged offline
            if mode != "online" or isinstance(err, RunInterrupted):
                raise
            reason = " ".join(str(err).split())[:200]
            note = (f"W&B online run could not start within {INIT_TIMEOUT_S:g} s ({type(err).__name__}: {reason}): "
                    "logging offline; upload later with `wandb sync`.")
            mode = "offline"
            run = wandb.init(**kwargs, mode=mode)
        if run is None:
            raise RuntimeError("wandb.init returned no run")
        where = getattr(run, "dir", None) or out_dir
        if mode in ("offline", "dryrun"):
            message = note or f"W&B run offline in {where}; upload it later with `wandb sync`."
        elif mode == "disabled":
            message = "W&B disabled (WANDB_MODE=disabled); nothing is logged to W&B."
        else:
            url = getattr(run, "url", None)
            message = f"W&B run {getattr(run, 'name', '')} ({mode})" + (f" at {url}" if url else "") + "."
        return run, message
    except BaseException as err:  # noqa: BLE001 - W&B must never stop the attribution
        if isinstance(err, (KeyboardInterrupt, RunInterrupted)):
            raise
        reason = f"{type(err).__name__}: {err}".strip().rstrip(":")
        return None, f"W&B could not start: {reason}; outputs are still written to {out_dir}"


def _run_of(target: Any) -> Any:
    """The W&B run behind ``target``: a run itself, or a Lightning ``WandbLogger`` (``.experiment``)."""
    if hasattr(target, "log_metrics") and hasattr(target, "experiment"):  # a Lightning logger
        return target.experiment
    if hasattr(target, "log"):
        return target
    raise TypeError(f"expected a wandb run or a Lightning WandbLogger, got {type(target).__name__}.")


def contributor_table_rows(doc: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the contributor table: contributor, role, n_examples, then per utility
    ``<utility>_value`` and ``<utility>_std``."""
    utilities = doc["utilities"]
    columns = ["contributor", "role", "n_examples"]
    for name in utilities:
        columns += [f"{name}_value", f"{name}_std"]
    rows = []
    for i, contributor in enumerate(doc["contributors"]):
        row: list[Any] = [contributor["id"], contributor.get("role", ""), contributor["n_examples"]]
        for util in utilities.values():
            std = util.get("std")
            row += [util["values"][i], None if std is None else std[i]]
        rows.append(row)
    return columns, rows


def log_to_wandb(target: Any, doc: Mapping[str, Any], paths: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """Log an attribution document to W&B in one ``log`` call; returns what was logged.

    ``target`` is a ``wandb`` run or a Lightning ``WandbLogger``. Logged: a ``wandb.Table`` under
    ``contributors`` (see :func:`contributor_table_rows`; every contributor), a ``wandb.plot.bar`` of each
    utility's values under ``values/<utility>`` (beyond 40 contributors, the largest and smallest 15),
    every PNG in ``paths`` (from :func:`~surrogateshap.report.write_outputs`) as ``plots/<file stem>``, and
    the scalars
    ``<utility>/lds``, ``<utility>/surrogate_r2``, ``<utility>/v_full``... and ``timings/<stage>``.
    With soft membership, a ``shared_units`` table holds each shared unit's holders and the
    responsibility classifier's held-out fit (:func:`~surrogateshap.report.document.shared_unit_rows`).
    """
    import wandb

    run = _run_of(target)
    columns, rows = contributor_table_rows(doc)
    payload: dict[str, Any] = {"contributors": wandb.Table(columns=columns, data=rows, allow_mixed_types=True)}
    ids = [c["id"] for c in doc["contributors"]]
    for name, util in doc["utilities"].items():
        values = np.array([np.nan if v is None else v for v in util["values"]], dtype=np.float64)
        shown = [int(i) for i in shown_contributors(values)[::-1] if np.isfinite(values[i])]  # largest first
        table = wandb.Table(columns=["contributor", "value"], data=[[ids[i], values[i]] for i in shown])
        direction = "higher" if util["higher_is_better"] else "lower"
        which = "" if len(shown) == len(ids) else f" (the {len(shown)} largest and smallest of {len(ids)})"
        payload[f"values/{name}"] = wandb.plot.bar(
            table, "contributor", "value", title=f"{name}: Shapley values{which} ({direction} is better)"
        )
    for path in (paths or {}).values():
        path = Path(path)
        if path.suffix.lower() == ".png" and path.exists():
            payload[f"plots/{path.stem}"] = wandb.Image(str(path))
    shared = shared_unit_rows(doc)
    if shared:
        payload["shared_units"] = wandb.Table(columns=list(SHARED_UNIT_COLUMNS), data=shared, allow_mixed_types=True)
    payload.update(scalar_metrics(doc))
    run.log(payload)
    return payload


def log_scalars_to_logger(logger: Any, doc: Mapping[str, Any], step: int | None = None) -> dict[str, float]:
    """Log the document's scalars through any Lightning logger's ``log_metrics``; returns them.

    Names as in :func:`surrogateshap.report.document.scalar_metrics` (``<utility>/lds``,
    ``<utility>/surrogate_r2``, ``<utility>/v_full``, ``timings/<stage>``...).
    """
    metrics = scalar_metrics(doc)
    if metrics:
        logger.log_metrics(metrics, step=step)
    return metrics


def log_document(
    loggers: Sequence[Any], doc: Mapping[str, Any], paths: Mapping[str, Path] | None = None, step: int | None = None
) -> None:
    """Log a document to each Lightning logger: a ``WandbLogger`` gets everything (:func:`log_to_wandb`),
    any other logger the scalars (:func:`log_scalars_to_logger`, then ``save``)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            log_to_wandb(logger, doc, paths)
        else:
            log_scalars_to_logger(logger, doc, step=step)
            logger.save()
