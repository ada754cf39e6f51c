"""Subset-conditioned generation: sampling plans, backends, the predict loop and the bank it writes.

Names are imported lazily (PEP 562), so ``surrogateshap.generation.plan`` loads without
Lightning or diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "BackendProvider": ".protocols",
    "ClassConditionalDDPM": ".backends.ddpm",
    "DescribesGeneration": ".protocols",
    "GenerationBackend": ".backends.base",
    "ImageFolderSource": ".sources",
    "PlanDataModule": ".data",
    "RankShardSampler": ".plan",
    "SamplingPlan": ".plan",
    "SubsetConditionedGenerator": ".module",
    "bank_config": ".plan",
    "check_trainer_arguments": ".run",
    "collate_plan_rows": ".plan",
    "generate_bank": ".run",
    "sample_seed": ".plan",
    "stable_int": ".plan",
}

__all__ = [
    "BackendProvider",
    "ClassConditionalDDPM",
    "DescribesGeneration",
    "GenerationBackend",
    "ImageFolderSource",
    "PlanDataModule",
    "RankShardSampler",
    "SamplingPlan",
    "SubsetConditionedGenerator",
    "bank_config",
    "check_trainer_arguments",
    "collate_plan_rows",
    "generate_bank",
    "sample_seed",
    "stable_int",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .backends.base import GenerationBackend
    from .backends.ddpm import ClassConditionalDDPM
    from .data import PlanDataModule
    from .module import SubsetConditionedGenerator
    from .plan import RankShardSampler, SamplingPlan, bank_config, collate_plan_rows, sample_seed, stable_int
    from .protocols import BackendProvider, DescribesGeneration
    from .run import check_trainer_arguments, generate_bank
    from .sources import ImageFolderSource

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
