"""BankWriter: write each finished predict batch as a bank shard, so generation can resume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import Dataset

from ..bank import ShardWriter, check_bank_folder, existing_rows
from ..generation.module import merge_predictions
from ..generation.plan import SamplingPlan, bank_config
from ..generation.protocols import DescribesGeneration

__all__ = ["BankWriter"]


class BankWriter(BasePredictionWriter):
    """Append the predictions of ``SubsetConditionedGenerator`` to a contributor bank folder.

    Each finished batch (``write_interval="batch"``) or the whole epoch (``"epoch"``) becomes one
    shard written through :class:`~surrogateshap.bank.ShardWriter`. Under DDP (world size > 1)
    each rank writes its own manifest and shards (rank = ``trainer.global_rank``);
    ``ContributorBank.load`` merges them in plan order. Serve the plan with
    ``PlanDataModule(plan, bank_dir=output_dir)`` (or a loader over :meth:`remaining`) so that a
    rerun of the same config skips the rows already written.

    Parameters
    ----------
    output_dir : the bank folder.
    plan : the :class:`~surrogateshap.generation.SamplingPlan` being generated: its contributors
        (``n_examples``) are the bank's, and it is recorded in the bank's config.
    config : the bank's config (a folder written with another one is refused). None: the one
        ``generate_bank`` writes, :func:`~surrogateshap.generation.plan.bank_config` of the plan and of
        the generation settings of the module being run (when it describes them, as
        ``SubsetConditionedGenerator`` does: backend, guidance, steps, extractors), so a changed plan or
        setting is refused on resume, and banks of both routes are interchangeable.
    write_interval : ``"batch"`` (one shard per batch: resumable) or ``"epoch"``.

    >>> from surrogateshap.contributors import ContributorRegistry
    >>> registry = ContributorRegistry.from_rows([{"example_id": "x", "contributor": "ann", "label": 0}], num_labels=1)
    >>> writer = BankWriter("out/bank", SamplingPlan(registry, 4))
    >>> writer.n_examples
    {'ann': 1}
    """

    def __init__(
        self,
        output_dir: str | Path,
        plan: SamplingPlan,
        config: Mapping[str, Any] | None = None,
        write_interval: Literal["batch", "epoch"] = "batch",
    ) -> None:
        if write_interval not in ("batch", "epoch"):
            raise ValueError(f"write_interval must be 'batch' or 'epoch', got {write_interval!r}.")
        super().__init__(write_interval)
        self.output_dir = Path(output_dir)
        self.plan = SamplingPlan.ensure(plan)
        self.n_examples = {str(k): v for k, v in plan.n_examples.items()}
        self.config = None if config is None else dict(config)
        self._writer: ShardWriter | None = None

    # resume -------------------------------------------------------------------------
    def check_compatible(self) -> None:
        """Raise a ValueError if ``output_dir`` holds a bank of other contributors or another config."""
        if self.config is None:
            raise RuntimeError(
                "BankWriter knows the bank's config once the Trainer has set it up (or when given config=)."
            )
        check_bank_folder(self.output_dir, self.n_examples, self.config)

    def remaining(self) -> Dataset:
        """The plan rows not yet written (after a compatibility check): build the dataloader over these."""
        self.check_compatible()
        return self.plan.remaining(existing_rows(self.output_dir))

    # Lightning hooks ------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Open this process's shard writer (its own manifest under DDP); the bank's config, unless given,
        from the plan and the generation settings of ``pl_module``."""
        if stage != "predict":
            return  # nothing is written outside predict
        if self.config is None:
            generation = pl_module.generation_config() if isinstance(pl_module, DescribesGeneration) else None
            self.config = bank_config(self.plan, generation)
        rank = trainer.global_rank if trainer.world_size > 1 else None
        self._writer = ShardWriter(self.output_dir, self.n_examples, config=self.config, rank=rank)

    def _append(self, prediction: Mapping[str, Any]) -> None:
        if self._writer is None:
            raise RuntimeError("BankWriter.setup was not called: add the BankWriter to the Trainer's callbacks.")
        self._writer.append(
            prediction["features"],
            prediction["contributor"],
            sample_index=prediction["sample_index"],
            seed=prediction["seed"],
        )

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write the batch's rows as one shard."""
        self._append(prediction)

    def write_on_epoch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any] | None,
    ) -> None:
        """Write all rows of the epoch as one shard."""
        flat = _flatten(predictions)
        if flat:
            self._append(merge_predictions(flat))

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Wait for every rank to finish writing before anyone reads the bank.

        A barrier here, not in ``on_predict_end``: a rank whose share of the remaining rows is empty
        skips the predict loop and its hooks, but every rank tears down.
        """
        if stage == "predict":
            trainer.strategy.barrier("BankWriter.teardown")


def _flatten(predictions: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Per-batch prediction dicts from Lightning's list (one list per dataloader, or a flat list)."""
    out: list[Mapping[str, Any]] = []
    for item in predictions:
        if isinstance(item, Mapping):
            out.append(item)
        elif isinstance(item, Sequence):
            out.extend(_flatten(item))
    return out
