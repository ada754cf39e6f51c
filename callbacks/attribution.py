"""SurrogateShapCallback: contributor values of a bank once ``trainer.predict`` has written it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..attribution import AttributionResult, EstimatorSettings
from ..bank import ContributorBank
from ..generation.plan import SamplingPlan
from ..metrics.base import ContributorMetric
from ..report import log_document
from ..responsibility import MembershipSpec
from .attributor import Attributor, default_out_dir

__all__ = ["SurrogateShapCallback"]


class SurrogateShapCallback(pl.Callback):
    """Attribute the bank a predict run writes (SurrogateSHAP by default) when the run ends.

    When ``trainer.predict`` ends, the bank in ``bank_dir`` (all ranks' shards, including rows of
    earlier, resumed runs) is loaded, every utility is attributed by the attribution service
    (:func:`surrogateshap.attribution.attribute_bank`), and ``attribution.json``,
    ``attribution.csv``, plots and ``report.md`` are written to ``out_dir``. The document is logged
    to every logger of the Trainer: a ``WandbLogger`` gets the contributor table, bar charts, plots
    and scalars (:func:`~surrogateshap.report.log_to_wandb`), any other logger the scalars
    (``<utility>/lds``, ``<utility>/v_full``...). The result stays on the callback as ``result_``
    and ``paths_``. Under DDP the work runs on rank 0 after a barrier in ``teardown`` (ranks without
    rows skip the predict hooks); a rerun whose bank is already complete generates nothing and
    still attributes. For the values of a model while it trains, see
    :class:`~surrogateshap.callbacks.ContributorValueMonitor`.

    Parameters
    ----------
    utilities : name -> ``ContributorMetric`` (deep-copied for every attribution).
    bank_dir : the bank folder the run's :class:`~surrogateshap.callbacks.BankWriter` writes.
    v_empty, base_bank, estimator, roles : see :class:`~surrogateshap.callbacks.attributor.Attributor`.
    out_dir : where the outputs go; None: ``trainer.log_dir / "attribution"``.
    membership : contributors who share conditions: the ``membership`` section of a config
        (``kind: soft | shares``, ``features``, ``training_images``, ``classifier``) or a
        :class:`~surrogateshap.responsibility.MembershipSpec`. Give the ``plan`` the bank was generated
        from (``SamplingPlan(registry, m, per_unit=True)``) and, for ``kind: soft``, the ``extractors``
        of the membership's features. ``membership.npz`` is written next to the outputs.
    plan : the plan the bank is generated from (the BankWriter's): the bank in ``bank_dir`` must have been
        generated from it; with ``membership`` it must be per unit (its units weigh the samples).
    extractors : with ``membership: {kind: soft}``: name -> the extractors of its ``features``.
    progress : show a progress bar over utilities.

    Example::

        plan = SamplingPlan(registry, samples_per_contributor=64)
        trainer = pl.Trainer(callbacks=[
            BankWriter("out/bank", plan),
            SurrogateShapCallback({"quality": ContributorMean(feature="confidence")}, "out/bank", plan=plan,
                                  base_bank="out/base", estimator={"budget": 256}),
        ])
        trainer.predict(SubsetConditionedGenerator(backend, extractors),
                        datamodule=PlanDataModule(plan, bank_dir="out/bank"))

    >>> from surrogateshap.metrics import ContributorMean
    >>> callback = SurrogateShapCallback({"quality": ContributorMean(feature="score")}, "out/bank", v_empty=0.0)
    >>> callback.attributor.settings.method
    'surrogateshap'
    """

    def __init__(
        self,
        utilities: Mapping[str, ContributorMetric],
        bank_dir: str | Path,
        v_empty: float | Mapping[str, float] | None = None,
        base_bank: str | Path | None = None,
        estimator: EstimatorSettings | Mapping[str, Any] | None = None,
        out_dir: str | Path | None = None,
        roles: Mapping[str, Any] | None = None,
        membership: MembershipSpec | Mapping[str, Any] | None = None,
        plan: SamplingPlan | None = None,
        extractors: Mapping[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.attributor = Attributor(utilities, v_empty, base_bank, estimator, roles, membership)
        self.plan = self.attributor.check_plan(plan)
        self.bank_dir = Path(bank_dir)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.extractors = dict(extractors or {})
        self.progress = bool(progress)
        self.result_: AttributionResult | None = None
        self.paths_: dict[str, Path] | None = None
        self._done = False
        self._start: float | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Reset the per-run state."""
        if stage == "predict":
            self._done = False
            self._start = None

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the generation clock."""
        self._start = time.perf_counter()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Attribute the bank once its shards are written (single process; DDP: in ``teardown``)."""
        if trainer.world_size == 1:
            self._finish(trainer)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Predict under DDP, or with nothing left to generate: barrier, then attribute on rank 0.

        Lightning calls ``teardown`` only after a successful run, on every rank.
        """
        if stage == "predict" and not self._done:
            self._finish(trainer)

    def _finish(self, trainer: pl.Trainer) -> None:
        out_dir = self.out_dir if self.out_dir is not None else default_out_dir(trainer)
        generation = None if self._start is None else time.perf_counter() - self._start
        trainer.strategy.barrier("SurrogateShapCallback.predict")
        self._done = True
        if not trainer.is_global_zero:
            return
        bank = ContributorBank.load(self.bank_dir)
        if self.plan is not None and bank.config.get("plan") != self.plan.describe():
            raise ValueError(
                f"the bank in {self.bank_dir} was generated from another plan than this callback's: give "
                "SurrogateShapCallback the bank_dir and plan of the run's BankWriter."
            )
        result, paths = self.attribute(bank, out_dir, {"generation": generation})
        log_document(trainer.loggers, result.document, paths, step=trainer.global_step)

    def attribute(
        self, bank: ContributorBank, out_dir: str | Path, timings: Mapping[str, float | None] | None = None
    ) -> tuple[AttributionResult, dict[str, Path]]:
        """Attribute ``bank`` and write the outputs to ``out_dir`` (what the predict hooks run; usable on its
        own with a bank loaded from disk)."""
        units = None if self.plan is None else self.plan.units
        result = self.attributor(bank, units=units, extractors=self.extractors, timings=timings,
                                 progress=self.progress)
        self.result_, self.paths_ = result, result.write(out_dir)
        return result, self.paths_

