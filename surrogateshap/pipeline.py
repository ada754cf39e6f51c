"""From a config to attribution outputs: banks -> proxy games -> SurrogateSHAP -> files, plots, W&B.

:func:`run_attribution` runs a whole configured setting: it generates the banks (resuming), hands them
to the attribution service (:func:`surrogateshap.attribution.attribute_bank`) and writes the outputs.

Config sections read by :func:`run_attribution` (see ``configs/digits.yaml``):

- ``contributors``: a ``ContributorRegistry`` (class_path / init_args); optional ``roles``
  (a mapping id -> role, or a class_path building one) are written next to each contributor.
- ``plan``: ``samples_per_contributor`` and ``seed`` of the :class:`SamplingPlan`.
- ``generation``: ``backend``, ``extractors`` (name -> extractor), ``guidance_scale``,
  ``num_inference_steps``, ``batch_size``; optionally ``paired_scorers`` (name -> scorer of a
  sample against its source training image) and ``source_images`` (example ids -> images).
- ``base`` (optional): ``backend`` and ``samples`` of the model trained on no data or the base
  model before fine-tuning; its bank gives every utility's ``v_empty``.
- ``v_empty`` (optional): name -> number, for utilities the base bank does not cover.
- ``membership`` (optional): ``kind: soft`` for contributors who share conditions: the bank is
  generated per unit of shared conditions (``plan.samples_per_contributor`` is then per unit)
  and every sample weighted by a responsibility classifier (``surrogateshap.membership``),
  fitted on ``features`` (extractor names) of ``training_images`` (example ids -> images),
  with ``classifier`` options of :class:`~surrogateshap.responsibility.ResponsibilityModel`;
  ``kind: shares`` is the paper's proxy on the same bank (responsibilities = data shares).
- ``utilities``: name -> ``ContributorMetric`` (class_path / init_args).
- ``estimator``: ``method``, ``budget``, ``seed``, ``n_holdout`` and ``options``
  (:class:`~surrogateshap.attribution.EstimatorSettings`).
- ``trainer`` (optional): Lightning Trainer arguments for generation (accelerator, precision...).
- ``wandb`` (optional): ``project``, ``name``, ``enabled``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .attribution import AttributionResult, EstimatorSettings, attribute_bank, resolve_v_empty
from .bank import ContributorBank

__all__ = ["AttributionRun", "run_attribution"]


@dataclass
class AttributionRun(AttributionResult):
    """What :func:`run_attribution` produced: the attribution result, the files written, the bank, W&B's message."""

    paths: dict[str, Path] = field(default_factory=dict)
    bank: ContributorBank | None = None
    wandb_message: str = ""


def _section(config: Mapping[str, Any], key: str) -> Any:
    from .config import ConfigError

    if key not in config or config[key] is None:
        raise ConfigError(f"the config has no `{key}` section; see configs/digits.yaml for the expected layout.")
    return config[key]


def run_attribution(
    config: Mapping[str, Any],
    out_dir: str | Path,
    *,
    progress: bool = True,
    use_wandb: bool | None = None,
) -> AttributionRun:
    """Generate the banks of a configured setting (resuming), attribute every utility and write the outputs.

    Writes ``out_dir/bank`` (and ``out_dir/base_bank``; with shared conditions ``membership.npz``,
    every bank sample's responsibilities), then ``attribution.json``,
    ``attribution.csv``, PNG plots and ``report.md``, and logs a W&B run (offline unless the user
    is logged in; ``use_wandb=False`` or ``wandb.enabled: false`` turns it off).
    """
    from .config import instantiate
    from .contributors import ContributorRegistry
    from .generation import SamplingPlan, generate_bank
    from .report import log_to_wandb, start_wandb_run
    from .responsibility import MembershipSpec

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = EstimatorSettings.from_config(config.get("estimator"))
    timings: dict[str, float] = {}
    registry = instantiate(_section(config, "contributors"), "config.contributors")
    if not isinstance(registry, ContributorRegistry):
        raise ValueError(f"config.contributors must build a ContributorRegistry, got {type(registry).__name__}.")
    spec = MembershipSpec.from_config(config.get("membership"))
    plan_cfg = dict(_section(config, "plan"))
    plan = SamplingPlan(registry, plan_cfg.get("samples_per_contributor", 1), seed=int(plan_cfg.get("seed", 0)),
                        per_unit=spec.kind != "plain")
    empty = [cid for cid, m in plan.samples_per_contributor.items() if m == 0]
    if empty:
        raise ValueError(
            f"contributor(s) {empty[:5]} get no samples (plan.samples_per_contributor is 0 for them): every player "
            "needs samples in the bank; set plan.samples_per_contributor to at least 1."
        )
    gen = _section(config, "generation")
    extractors = instantiate(gen["extractors"], "config.generation.extractors")
    trainer_kwargs = dict(config.get("trainer") or {})
    gen_args = {
        "guidance_scale": float(gen.get("guidance_scale", 1.0)),
        "num_inference_steps": int(gen.get("num_inference_steps", 50)),
        "batch_size": int(gen.get("batch_size", 16)),
        "trainer_kwargs": {"enable_progress_bar": progress, **trainer_kwargs},
        # scorers comparing each sample with its source training image (e.g. paired LPIPS)
        "paired_scorers": instantiate(gen.get("paired_scorers"), "config.generation.paired_scorers") or None,
        "source_images": instantiate(gen.get("source_images"), "config.generation.source_images"),
    }
    tic = time.perf_counter()
    backend = instantiate(gen["backend"], "config.generation.backend")
    bank = generate_bank(backend, plan, extractors, out / "bank", **gen_args)
    timings["generation"] = time.perf_counter() - tic

    utilities = instantiate(_section(config, "utilities"), "config.utilities")
    base_bank = None
    base_cfg = config.get("base")
    if base_cfg:
        tic = time.perf_counter()
        base_backend = instantiate(base_cfg["backend"], "config.base.backend")
        base_plan = SamplingPlan(registry, int(base_cfg.get("samples_per_contributor", 8)), seed=plan.seed,
                                 per_unit=plan.units is not None)
        base_bank = generate_bank(base_backend, base_plan, extractors, out / "base_bank", **gen_args)
        timings["base_generation"] = time.perf_counter() - tic
    empties = resolve_v_empty(list(utilities), config.get("v_empty"), base_bank)
    roles = dict(instantiate(config.get("roles") or {}, "config.roles"))
    result = attribute_bank(
        bank, utilities, empties, settings, membership=spec, units=plan.units, extractors=extractors, roles=roles,
        timings=timings, extra={"samples_per_contributor": plan_cfg.get("samples_per_contributor")},
        progress=progress,
    )
    tic = time.perf_counter()
    paths = result.write(out)
    run = AttributionRun(result.results, result.document, result.membership, result.timings, paths, bank)
    run.timings["report"] = time.perf_counter() - tic
    wandb_cfg = dict(config.get("wandb") or {})
    if use_wandb is None:
        use_wandb = bool(wandb_cfg.get("enabled", True))
    if use_wandb:
        wandb_run, message = start_wandb_run(
            out, project=wandb_cfg.get("project", "surrogateshap"), name=wandb_cfg.get("name"),
            config={"estimator": settings.to_dict(), "plan": plan_cfg},
        )
        if wandb_run is not None:
            try:
                log_to_wandb(wandb_run, run.document, paths)
                message = message or f"W&B run logged to {wandb_run.dir}"
            finally:
                wandb_run.finish()
        run.wandb_message = message
    return run
