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
        ``None`` (e.g. a LightningCLI predict config): taken in :meth:`setup` from
        ``trainer.datamodule.plan`` (a ``SamplingPlan``, as :class:`~surrogateshap.generation.PlanDataModule`
        has).
    config : JSON-serialisable description of the run; a folder written with another config is refused.
        ``None`` with ``contributors`` given: ``{}``. ``None`` with ``contributors`` omitted: the config
        ``generate_bank`` stores (:func:`~surrogateshap.generation.bank_config` of the datamodule's plan and
        the module's ``backend``, ``guidance_scale`` and ``num_inference_steps``), so a changed plan or
        generation setting is refused on resume, and banks of both routes are interchangeable.
    write_interval : ``"batch"`` (one shard per batch: resumable) or ``"epoch"``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        contributors: ContributorRegistry | Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        write_interval: Literal["batch", "epoch"] = "batch",
    ) -> None:
        if write_interval not in ("batch", "epoch"):
            raise ValueError(f"write_interval must be 'batch' or 'epoch', got {write_interval!r}.")
        super().__init__(write_interval)
        self.output_dir = Path(output_dir)
        self._from_datamodule = contributors is None
        self._config_given = config is not None
        self.n_examples: dict[str, Any] | None = None
        if contributors is not None:
            self._set_contributors(contributors)
        self.config = {} if config is None else dict(config)
        self._writer: ShardWriter | None = None

    def _set_contributors(self, contributors: ContributorRegistry | Mapping[str, Any]) -> None:
        n_examples = contributors.n_examples if isinstance(contributors, ContributorRegistry) else contributors
        self.n_examples = {str(k): v for k, v in dict(n_examples).items()}

    def _contributors_from_datamodule(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """``n_examples`` (and, unless given, the bank config) from ``trainer.datamodule.plan``."""
        plan = getattr(trainer.datamodule, "plan", None)
        if plan is None or not hasattr(plan, "n_examples"):
            raise ValueError(
                "BankWriter was built without contributors, so it reads them from trainer.datamodule.plan (a "
                "SamplingPlan), but the Trainer has "
                + ("no datamodule" if trainer.datamodule is None else f"a {type(trainer.datamodule).__name__} "
                   "without a `plan`")
                + ": use surrogateshap.generation.PlanDataModule or pass contributors=<registry or id -> n_examples>."
            )
        self._set_contributors(plan.n_examples)
        if not self._config_given:
            self.config = _plan_config(plan, pl_module)

    # resume -------------------------------------------------------------------------
    def check_compatible(self) -> None:
        """Raise a ValueError if ``output_dir`` holds a bank of other contributors or another config."""
        if self.n_examples is None:
            raise RuntimeError(
                "BankWriter has no contributors yet: built without them, it reads them from "
                "trainer.datamodule.plan in setup(); add it to the Trainer's callbacks before using it."
            )
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
        """Open this process's shard writer (its own manifest under DDP).

        Without ``contributors`` given, first read them from ``trainer.datamodule.plan``.
        """
        if self._from_datamodule:
            if stage != "predict":
                return  # nothing is written outside predict, and only predict runs have a plan to read
            self._contributors_from_datamodule(trainer, pl_module)
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


def _plan_config(plan: Any, pl_module: pl.LightningModule) -> dict[str, Any]:
    """The bank config ``generate_bank`` writes, from a plan and a ``SubsetConditionedGenerator``-like module."""
    backend = getattr(pl_module, "backend", None)
    if backend is None or not hasattr(pl_module, "guidance_scale") or not hasattr(pl_module, "num_inference_steps"):
        return {"plan": plan.describe()}
    from ..generation.run import bank_config  # late: generation.run imports this module

    return bank_config(plan, pl_module)


def _flatten(predictions: Sequence[Any]) -> list[Mapping[str, Any]]:
    """Per-batch prediction dicts from Lightning's list (one list per dataloader, or a flat list)."""
    out: list[Mapping[str, Any]] = []
    for item in predictions:
        if isinstance(item, Mapping):
            out.append(item)
        elif isinstance(item, Sequence):
            out.extend(_flatten(item))
    return out
