"""Reports of an attribution: ``attribution.json`` (validated), CSV, PNG plots, markdown, W&B.

Typical use::

    doc = attribution_document(contributors, results, method="surrogateshap", budget=512, timings=timings)
    paths = write_outputs(out_dir, doc, results)
    run, message = start_wandb_run(out_dir)
    if run is not None:
        log_to_wandb(run, doc, paths)
        run.finish()
"""

from __future__ import annotations

from .document import (
    UtilityResult,
    attribution_document,
    attribution_schema,
    load_attribution_document,
    validate_attribution_document,
    write_outputs,
)
from .wandb_log import log_scalars_to_logger, log_to_wandb, start_wandb_run

__all__ = [
    "UtilityResult",
    "attribution_document",
    "attribution_schema",
    "load_attribution_document",
    "log_scalars_to_logger",
    "log_to_wandb",
    "start_wandb_run",
    "validate_attribution_document",
    "write_outputs",
]
