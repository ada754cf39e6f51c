"""BankWriter: write each finished predict batch as a bank shard, so generation can resume."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import Dataset

from ..bank import ShardWriter, check_bank_folder, existing_rows
from ..contributors import ContributorRegistry

__all__ = ["BankWriter"]


class BankWriter(BasePredictionWriter):
    """Append the predictions of ``SubsetConditionedGenerator`` to a contributor bank folder.

    Each finished batch (``write_interval="batch"``) or the whole epoch (``"epoch"``) becomes one
    shard written through :class:`~surrogateshap.bank.ShardWriter`. Under DDP (world size > 1)
    each rank writes its own manifest and shards (rank = ``trainer.global_rank``);
    ``ContributorBank.load`` merges them in plan order. Build the dataloader over
    :meth:`remaining` so a rerun of the same config skips rows already written.

    Parameters
    ----------
    output_dir : the bank folder.
    contributors : a :class:`ContributorRegistry` (its ``n_examples``) or a mapping id -> n_examples.
    config : JSON-serialisable description of the run; a folder written with another config is refused.
    write_interval : ``"batch"`` (one shard per batch: resumable) or ``"epoch"``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        contributors: ContributorRegistry | Mapping[str, Any],
        config: Mapping[str, Any] | None = None,
        write_interval: Literal["batch", "epoch"] = "batch",
    ) -> None:
        if write_interval not in ("batch", "epoch"):
            raise ValueError(f"write_interval must be 'batch' or 'epoch', got {write_interval!r}.")
        super().__init__(write_interval)
        self.output_dir = Path(output_dir)
        n_examples = contributors.n_examples if isinstance(contributors, ContributorRegistry) else contributors
        self.n_examples = {str(k): v for k, v in dict(n_examples).items()}
        self.config = {} if config is None else dict(config)
        self._writer: ShardWriter | None = None

    # resume -------------------------------------------------------------------------
    def check_compatible(self) -> None:
        """Raise a ValueError if ``output_dir`` holds a bank of other contributors or another config."""
        check_bank_folder(self.output_dir, self.n_examples, self.config)

    def existing_rows(self) -> set[tuple[str, int]]:
        """(contributor id, sample_index) rows already in ``output_dir`` (after a compatibility check)."""
        self.check_compatible()
        return existing_rows(self.output_dir)

    def remaining(self, plan: Any) -> Dataset:
        """The rows of ``plan`` (a ``SamplingPlan``) not yet written: build the dataloader over these."""
        return plan.remaining(self.existing_rows())

    # Lightning hooks ------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Open this process's shard writer (its own manifest under DDP)."""
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
        if not flat:
            return
        self._append(
            {
                "features": {k: np.concatenate([p["features"][k] for p in flat]) for k in flat[0]["features"]},
                "contributor": [c for p in flat for c in p["contributor"]],
                "sample_index": np.concatenate([p["sample_index"] for p in flat]),
                "seed": np.concatenate([p["seed"] for p in flat]),
            }
        )

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
