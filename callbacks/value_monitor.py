"""ContributorValueMonitor: the contributor values of the model being trained, every k epochs, beside the loss."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from ..attribution import EstimatorSettings, UtilityResult
from ..checks import check_int
from ..generation.module import SubsetConditionedGenerator
from ..generation.plan import SamplingPlan
from ..generation.protocols import BackendProvider
from ..io import atomic_write_text
from ..metrics.base import ContributorMetric
from ..responsibility import MembershipSpec
from .attributor import Attributor, default_out_dir

__all__ = ["HISTORY_COLUMNS", "ContributorValueMonitor"]

HISTORY_COLUMNS = ("epoch", "step", "utility", "contributor", "value", "std")


class ContributorValueMonitor(pl.Callback):
    """Attribute the model being trained every ``every_n_epochs`` epochs and log the values next to the loss.

    At the end of every k-th training epoch (rank 0) the LightningModule's current model is
    sampled over ``plan`` *without* a nested Trainer (``SubsetConditionedGenerator.sample`` over
    ``pl_module.to_backend()``, under ``torch.no_grad()`` in eval mode, each submodule's mode restored after,
    per-sample CPU generators only, so the training RNG streams are not consumed), the bank is kept
    in memory and attributed by the attribution service. Logged through ``trainer.loggers``
    (``log_metrics`` at ``trainer.global_step``, as ``LearningRateMonitor`` logs rates):
    ``contributor_value/<utility>/<contributor>`` and ``<utility>/lds``; beyond ``log_all_up_to``
    contributors only those of the ``log_top_k`` largest and smallest values get a scalar, beside
    ``<utility>/value_spread`` (the values' standard deviation), and a ``WandbLogger`` gets every value
    as one table per attribution (``contributor_values``). Every value is appended to
    ``history`` (dicts with ``epoch``, ``step``, ``utility``, ``contributor``, ``value``, ``std``),
    which travels in checkpoints (``state_dict``), and ``history.csv`` in ``out_dir`` is rewritten
    atomically.

    The LightningModule implements :class:`~surrogateshap.generation.BackendProvider`: one method,
    ``to_backend()``, returning a :class:`~surrogateshap.generation.GenerationBackend` over its
    current weights (README: a complete example with a plain diffusers UNet).

    Parameters
    ----------
    utilities : name -> ``ContributorMetric``.
    plan : the :class:`~surrogateshap.generation.SamplingPlan` sampled at every attribution (per unit
        of shared conditions with ``membership``).
    extractors : name -> feature extractor / scorer the utilities read (as for ``SubsetConditionedGenerator``).
    every_n_epochs : attribute every that many training epochs.
    v_empty, base_bank, estimator, roles, membership : see :class:`~surrogateshap.callbacks.attributor.Attributor`.
    guidance_scale, num_inference_steps, batch_size : sampling settings.
    out_dir : where ``history.csv`` goes; None: ``trainer.log_dir / "attribution"``.
    write_history : write ``history.csv`` after every attribution.
    log_all_up_to, log_top_k : scalar logging at many contributors (above).

    >>> from surrogateshap.contributors import ContributorRegistry
    >>> from surrogateshap.metrics import ContributorMean
    >>> registry = ContributorRegistry.from_rows([{"example_id": "x", "contributor": "ann", "label": 0}], num_labels=1)
    >>> monitor = ContributorValueMonitor({"quality": ContributorMean(feature="score")}, SamplingPlan(registry, 8),
    ...                                   {"score": lambda images: images.mean(dim=(1, 2, 3))}, every_n_epochs=5,
    ...                                   v_empty=0.0)
    >>> monitor.every_n_epochs, monitor.history
    (5, [])
    """

    def __init__(
        self,
        utilities: Mapping[str, ContributorMetric],
        plan: SamplingPlan,
        extractors: Mapping[str, nn.Module | Callable[[torch.Tensor], torch.Tensor]],
        every_n_epochs: int = 1,
        v_empty: float | Mapping[str, float] | None = None,
        base_bank: str | Path | None = None,
        estimator: EstimatorSettings | Mapping[str, Any] | None = None,
        roles: Mapping[str, Any] | None = None,
        membership: MembershipSpec | Mapping[str, Any] | None = None,
        guidance_scale: float = 1.0,
        num_inference_steps: int = 50,
        batch_size: int = 16,
        out_dir: str | Path | None = None,
        write_history: bool = True,
        log_all_up_to: int = 50,
        log_top_k: int = 10,
    ) -> None:
        super().__init__()
        self.attributor = Attributor(utilities, v_empty, base_bank, estimator, roles, membership)
        self.attributor.check_plan(SamplingPlan.ensure(plan))
        if not extractors:
            raise ValueError("extractors must name the feature extractors the utilities read.")
        self.plan = plan
        self.extractors = dict(extractors)
        self.every_n_epochs = check_int(every_n_epochs, "every_n_epochs", 1)
        self.guidance_scale = float(guidance_scale)
        self.num_inference_steps = check_int(num_inference_steps, "num_inference_steps", 1)
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.write_history = bool(write_history)
        self.log_all_up_to = check_int(log_all_up_to, "log_all_up_to", 0)
        self.log_top_k = check_int(log_top_k, "log_top_k", 0)
        self.history: list[dict[str, Any]] = []
        self.last_epoch: int | None = None
        self.last_results_: list[UtilityResult] | None = None

    # ------------------------------------------------------------------ checkpointing
    @property
    def state_key(self) -> str:
        """Unique per configuration, so several monitors can live in one Trainer."""
        return self._generate_state_key(every_n_epochs=self.every_n_epochs, utilities=tuple(self.attributor.utilities))

    def state_dict(self) -> dict[str, Any]:
        """``history`` and the last attributed epoch (saved in checkpoints)."""
        return {"history": [dict(row) for row in self.history], "last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``history`` and the epoch counter from a checkpoint."""
        self.history = [dict(row) for row in state_dict.get("history", [])]
        self.last_epoch = state_dict.get("last_epoch")

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check, before training starts, that the module can hand out a backend."""
        if stage == "fit" and not isinstance(pl_module, BackendProvider):
            raise ValueError(
                f"{type(pl_module).__name__} has no to_backend(): ContributorValueMonitor samples the model being "
                "trained through a GenerationBackend; give the LightningModule a to_backend() method returning one "
                "(surrogateshap.generation.BackendProvider; README has a complete example)."
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Every ``every_n_epochs`` epochs: sample the current model, attribute, log and record."""
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        out_dir = (self.out_dir or default_out_dir(trainer)) if self.write_history else None  # every rank
        if trainer.is_global_zero:
            self.evaluate(trainer, pl_module, int(trainer.current_epoch), out_dir)
        trainer.strategy.barrier("ContributorValueMonitor.on_train_epoch_end")

    def evaluate(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int, out_dir: Path | None = None
    ) -> list[UtilityResult]:
        """Sample ``pl_module``'s model over the plan, attribute, log, record ``history``; returns the results."""
        modes = {module: module.training for module in pl_module.modules()}  # a frozen part may stay in eval
        pl_module.eval()
        try:
            with torch.no_grad():
                generator = SubsetConditionedGenerator(
                    pl_module.to_backend(), self.extractors, self.guidance_scale, self.num_inference_steps
                ).to(pl_module.device)
                generator.eval()
                bank = generator.sample(self.plan, self.batch_size)
        finally:
            for module, training in modes.items():
                module.train(training)
        results = self.attributor(bank, units=self.plan.units, extractors=generator.extractors).results
        step = int(trainer.global_step)
        self.history = [row for row in self.history if row["epoch"] != epoch]  # a resumed epoch replaces its rows
        metrics: dict[str, float] = {}
        rows = []
        for result in results:
            att = result.attribution
            values = np.asarray(att.values, dtype=np.float64)
            std = None if att.std is None else np.asarray(att.std, dtype=np.float64)
            logged = self._logged_contributors(values)
            for i, (cid, value) in enumerate(zip(att.players, values)):
                if i in logged:
                    metrics[f"contributor_value/{result.name}/{cid}"] = float(value)
                rows.append({
                    "epoch": epoch, "step": step, "utility": result.name, "contributor": cid,
                    "value": float(value), "std": None if std is None else float(std[i]),
                })
            if len(logged) < values.size:
                metrics[f"{result.name}/value_spread"] = float(values.std())
            if result.lds is not None and np.isfinite(result.lds):
                metrics[f"{result.name}/lds"] = float(result.lds)
        self.history += rows
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            if len(rows) > self.log_all_up_to * len(results) and isinstance(logger, WandbLogger):
                logger.log_table("contributor_values", columns=list(HISTORY_COLUMNS),
                                 data=[[row[c] for c in HISTORY_COLUMNS] for row in rows], step=step)
        self.last_epoch = epoch
        self.last_results_ = results
        if out_dir is not None:
            self.write_history_csv(out_dir / "history.csv")
        return results

    def _logged_contributors(self, values: np.ndarray) -> set[int]:
        """The contributors that get a scalar series: all, or those of the largest and smallest values."""
        if values.size <= self.log_all_up_to:
            return set(range(values.size))
        order = np.argsort(values, kind="stable")
        return {int(i) for i in np.concatenate([order[: self.log_top_k], order[values.size - self.log_top_k :]])}

    def write_history_csv(self, path: str | Path) -> Path:
        """Write ``history`` as CSV (columns ``HISTORY_COLUMNS``) atomically."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in self.history:
            writer.writerow(["" if row.get(k) is None else row.get(k) for k in HISTORY_COLUMNS])
        return atomic_write_text(path, buffer.getvalue())
