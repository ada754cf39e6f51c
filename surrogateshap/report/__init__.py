"""Reports of an attribution document: ``attribution.json`` (validated), CSV, PNG plots, markdown, W&B.

Everything here reads the document alone (built by :mod:`surrogateshap.attribution`), so a finished
run's files can be rebuilt from its ``attribution.json``::

    paths = write_outputs(out_dir, result.document)
    run, message = start_wandb_run(out_dir)
    if run is not None:
        log_to_wandb(run, result.document, paths)
        run.finish()
"""

from __future__ import annotations

from .document import attribution_schema, load_attribution_document, validate_attribution_document
from .outputs import attribution_csv, rebuild_outputs, write_outputs
from .wandb_log import log_document, log_scalars_to_logger, log_to_wandb, start_wandb_run, wandb_mode

__all__ = [
    "attribution_csv",
    "attribution_schema",
    "load_attribution_document",
    "log_document",
    "log_scalars_to_logger",
    "log_to_wandb",
    "rebuild_outputs",
    "start_wandb_run",
    "wandb_mode",
    "validate_attribution_document",
    "write_outputs",
]
