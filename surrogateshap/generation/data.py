"""PlanDataModule: a sampling plan as a Lightning data module, for ``trainer.predict`` and LightningCLI configs."""

from __future__ import annotations

from collections.abc import Mapping

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from ..contributors import ContributorRegistry
from ..membership import condition_units
from .plan import SamplingPlan, collate_plan_rows

__all__ = ["PlanDataModule"]


class PlanDataModule(pl.LightningDataModule):
    """The rows of a :class:`SamplingPlan` as the predict dataloader of a ``SubsetConditionedGenerator``.

    When a :class:`~surrogateshap.callbacks.BankWriter` is among ``trainer.callbacks``, only the
    plan rows not yet written in its folder are served (``BankWriter.remaining``), so a rerun of
    the same config resumes a killed generation. Under DDP, Lightning's predict sampler splits
    the rows over the processes.

    Parameters
    ----------
    contributors : the :class:`ContributorRegistry`. In a LightningCLI config give it as
        ``class_path``/``init_args`` of the registry or of a function returning one, e.g.
        ``surrogateshap.data.digits.digits_registry``.
    samples_per_contributor : m samples for every contributor, or a mapping id -> m.
    seed : the plan's global seed (a sample's seed depends on it, its contributor and index only).
    batch_size, num_workers : DataLoader settings (rows stay in plan order).
    per_unit : plan per unit of shared conditions (``surrogateshap.membership.condition_units``)
        instead of per contributor: the bank that soft membership (``SurrogateShapCallback(membership=
        ...)``) weights; ``samples_per_contributor`` is then per unit. Without shared conditions the
        plan is the same either way.

    Attributes
    ----------
    plan : the :class:`SamplingPlan` (built in ``__init__``; ``BankWriter`` reads its contributors).
    registry : the contributors; ``units`` : their ``ConditionUnits`` (``per_unit``) or None.
    """

    def __init__(
        self,
        contributors: ContributorRegistry,
        samples_per_contributor: int | Mapping[str, int] = 1,
        seed: int = 0,
        batch_size: int = 16,
        num_workers: int = 0,
        per_unit: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(contributors, ContributorRegistry):
            raise ValueError(
                "contributors must be a ContributorRegistry (in a config: class_path/init_args of the registry or "
                f"of a function returning one, e.g. surrogateshap.data.digits.digits_registry), got "
                f"{type(contributors).__name__}."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.registry = contributors
        self.units = condition_units(contributors) if per_unit else None
        planned = contributors if self.units is None else self.units.registry
        self.plan = SamplingPlan(planned, samples_per_contributor, seed=seed)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.save_hyperparameters(ignore=["contributors"])

    def _rows(self) -> Dataset:
        """The plan rows still to generate: all of them, or those a BankWriter has not written yet."""
        from ..callbacks.bank_writer import BankWriter

        trainer = self.trainer
        writers = [] if trainer is None else [cb for cb in trainer.callbacks if isinstance(cb, BankWriter)]
        if len(writers) > 1:
            raise ValueError(
                f"{len(writers)} BankWriter callbacks found; PlanDataModule resumes from one bank folder only."
            )
        return writers[0].remaining(self.plan) if writers else self.plan

    def predict_dataloader(self) -> DataLoader:
        """Batches of the remaining plan rows (``collate_plan_rows``), in plan order."""
        return DataLoader(
            self._rows(),
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=collate_plan_rows,
            num_workers=self.num_workers,
        )
