"""generate_bank: one call from a backend and a sampling plan to a contributor bank on disk."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from ..bank import ContributorBank
from ..callbacks.bank_writer import BankWriter
from ..checks import check_int
from .backends.base import GenerationBackend
from .module import SubsetConditionedGenerator
from .plan import RankShardSampler, SamplingPlan, bank_config, collate_plan_rows

__all__ = ["generate_bank"]

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
        forced = {k: v for k, v in (trainer_kwargs or {}).items() if k in _FORCED and v != _FORCED[k]}
        if forced:
            raise ValueError(f"generate_bank sets {_FORCED} itself (each plan row goes to one process); got {forced}.")
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
