"""generate_bank: one call from a backend and a sampling plan to a contributor bank on disk."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from ..bank import ContributorBank
from ..callbacks.bank_writer import BankWriter
from ..checks import check_int
from .backends.base import GenerationBackend
from .module import SubsetConditionedGenerator
from .plan import RankShardSampler, SamplingPlan, bank_config, collate_plan_rows

__all__ = ["check_trainer_arguments", "generate_bank"]

#: Trainer settings for inference; ``trainer_kwargs`` override them.
TRAINER_DEFAULTS: dict[str, Any] = {
    "accelerator": "auto",
    "devices": 1,
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "inference_mode": True,
}
# generate_bank shards the rows over processes itself (RankShardSampler): Lightning's predict sampler
# refuses a rank without rows, which a resumed run with fewer rows left than processes needs.
_FORCED = {"use_distributed_sampler": False}


def check_trainer_arguments(trainer_kwargs: Mapping[str, Any] | None, where: str = "trainer section") -> None:
    """Refuse, before any model is loaded, Trainer arguments that ``generate_bank`` could not use: a
    value Lightning rejects (an accelerator this machine lacks, an unknown precision) or one that
    ``generate_bank`` sets itself. Builds the Trainer once and throws it away (a fraction of a second).

    >>> check_trainer_arguments({"accelerator": "cpu"})
    >>> check_trainer_arguments({"precision": 17})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: trainer section: Lightning refuses these arguments: Precision 17 is invalid. ...
    """
    _check_not_forced(trainer_kwargs, where)
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the throw-away Trainer's "GPU available: ..." lines
    try:
        pl.Trainer(**{**TRAINER_DEFAULTS, **dict(trainer_kwargs or {}), **_FORCED, "enable_progress_bar": False})
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
        first = " ".join(str(err).split())
        raise ValueError(f"{where}: Lightning refuses these arguments: {first} Fix the `trainer` section "
                         "(e.g. accelerator: cpu).") from None
    finally:
        quiet.setLevel(level)


def _check_not_forced(trainer_kwargs: Mapping[str, Any] | None, where: str) -> None:
    forced = {k: v for k, v in (trainer_kwargs or {}).items() if k in _FORCED and v != _FORCED[k]}
    if forced:
        raise ValueError(f"{where}: generate_bank sets {_FORCED} itself (each plan row goes to one process); "
                         f"remove {sorted(forced)}.")


def generate_bank(
    backend: GenerationBackend,
    plan: SamplingPlan,
    extractors: Mapping[str, Callable[[torch.Tensor], torch.Tensor]],
    out_dir: str | Path,
    *,
    guidance_scale: float = 1.0,
    num_inference_steps: int = 50,
    batch_size: int = 16,
    config: Mapping[str, Any] | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    callbacks: Sequence[pl.Callback] = (),
    num_workers: int = 0,
    save_images_dir: str | Path | None = None,
    paired_scorers: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None,
    source_images: Callable[[list[str]], torch.Tensor] | None = None,
) -> ContributorBank:
    """Generate the plan's samples (skipping rows already in ``out_dir``) and return the loaded bank.

    Builds a :class:`SubsetConditionedGenerator`, a :class:`BankWriter` over ``out_dir`` and a
    ``lightning.Trainer`` (inference defaults in ``TRAINER_DEFAULTS``, overridden by
    ``trainer_kwargs``: accelerator, devices, strategy, precision...), runs ``trainer.predict``
    over the remaining plan rows (split over processes by :class:`RankShardSampler`), then loads
    the bank (all ranks' shards, in plan order). A killed run resumes when called again with the
    same arguments; under DDP each rank writes its own shards.

    ``paired_scorers`` (name -> ``scorer(generated, source) -> (B,)``) and ``source_images``
    (example ids -> source training images) add per-sample scores against the training image
    whose caption produced each prompt; see :class:`SubsetConditionedGenerator`.
    """
    check_int(batch_size, "batch_size", 1)
    plan.check_backend(backend)
    module = SubsetConditionedGenerator(
        backend, extractors, guidance_scale, num_inference_steps, save_images_dir=save_images_dir,
        paired_scorers=paired_scorers, source_images=source_images,
    )
    full_config = bank_config(plan, module.generation_config(), config)
    writer = BankWriter(out_dir, plan, config=full_config)
    rows = writer.remaining()
    if len(rows):
        _check_not_forced(trainer_kwargs, "generate_bank's trainer_kwargs")
        kwargs = {**TRAINER_DEFAULTS, **dict(trainer_kwargs or {}), **_FORCED}
        kwargs["callbacks"] = [writer, *callbacks, *kwargs.get("callbacks", [])]
        trainer = pl.Trainer(**kwargs)
        loader = DataLoader(
            rows,
            batch_size=batch_size,
            sampler=RankShardSampler(len(rows), trainer),
            collate_fn=collate_plan_rows,
            num_workers=num_workers,
        )
        trainer.predict(module, dataloaders=loader, return_predictions=False)
    return ContributorBank.load(out_dir, expected_config=full_config)
