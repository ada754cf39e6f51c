"""PlanDataModule: a sampling plan as a Lightning data module, for ``trainer.predict`` and LightningCLI configs."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Dataset

from ..bank import existing_rows
from ..checks import check_int
from .plan import SamplingPlan, collate_plan_rows

__all__ = ["PlanDataModule"]


class PlanDataModule(pl.LightningDataModule):
    """The rows of a :class:`SamplingPlan` as the predict dataloader of a ``SubsetConditionedGenerator``.

    With ``bank_dir`` (the folder a :class:`~surrogateshap.callbacks.BankWriter` writes), only the
    plan rows not yet written there are served, so a rerun of the same config resumes a killed
    generation. Under DDP, Lightning's predict sampler splits the rows over the processes.

    Parameters
    ----------
    plan : the :class:`SamplingPlan` (per unit of shared conditions for soft membership). In a
        LightningCLI config give it as ``class_path``/``init_args``; its ``registry`` as those of the
        registry or of a function returning one (``surrogateshap.examples.digits.digits_registry``).
    batch_size, num_workers : DataLoader settings (rows stay in plan order).
    bank_dir : the bank folder being written; its rows are skipped. None: every row.

    >>> from surrogateshap.contributors import ContributorRegistry
    >>> registry = ContributorRegistry.from_rows([{"example_id": "x", "contributor": "ann", "label": 0}], num_labels=1)
    >>> data = PlanDataModule(SamplingPlan(registry, 3), batch_size=2)
    >>> [len(batch["seed"]) for batch in data.predict_dataloader()]
    [2, 1]
    """

    def __init__(
        self,
        plan: SamplingPlan,
        batch_size: int = 16,
        num_workers: int = 0,
        bank_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.plan = SamplingPlan.ensure(plan)
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.num_workers = check_int(num_workers, "num_workers", 0)
        self.bank_dir = None if bank_dir is None else Path(bank_dir)
        self.save_hyperparameters(ignore=["plan"])

    def rows(self) -> Dataset:
        """The plan rows still to generate: all of them, or those not yet in ``bank_dir``."""
        return self.plan if self.bank_dir is None else self.plan.remaining(existing_rows(self.bank_dir))

    def predict_dataloader(self) -> DataLoader:
        """Batches of the remaining plan rows (``collate_plan_rows``), in plan order."""
        return DataLoader(
            self.rows(),
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=collate_plan_rows,
            num_workers=self.num_workers,
        )
