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

:func:`attribute_sections` lists these sections and their keys (what ``load_config(..., sections=)``
accepts). Before the first model is loaded, :func:`run_attribution` checks every file the config names
(:func:`~surrogateshap.config.check_paths`), the estimator settings, the metadata file and the plan; only
then does it create ``out_dir`` and take its lock (:func:`~surrogateshap.io.output_lock`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .attribution import AttributionResult, EstimatorSettings, attribute_bank, check_v_empty, resolve_v_empty
from .bank import ContributorBank
from .checks import check_int
from .config import Sections

__all__ = ["AttributionRun", "attribute_sections", "check_attribution_config", "run_attribution"]

_CLASS_NODE = frozenset({"class_path", "init_args"})


def attribute_sections() -> dict[str, frozenset[str] | None]:
    """The config sections :func:`run_attribution` reads and the keys each may hold (None: any keys).

    ``trainer`` takes the arguments of Lightning's ``Trainer``.

    >>> sorted(attribute_sections()["plan"])
    ['samples_per_contributor', 'seed']
    """
    import inspect

    import lightning.pytorch as pl

    from .responsibility import MembershipSpec

    return {
        "paths": None, "v_empty": None, "utilities": None, "roles": None,
        "contributors": _CLASS_NODE,
        "plan": frozenset({"samples_per_contributor", "seed"}),
        "generation": frozenset({"backend", "extractors", "guidance_scale", "num_inference_steps", "batch_size",
                                 "paired_scorers", "source_images"}),
        "base": frozenset({"backend", "samples_per_contributor"}),
        "membership": frozenset(MembershipSpec.KEYS),
        "estimator": frozenset(EstimatorSettings.__dataclass_fields__),
        "trainer": frozenset(inspect.signature(pl.Trainer).parameters),
        "wandb": frozenset({"project", "name", "enabled"}),
    }


def _sections_of(extra: Sections | None) -> dict[str, frozenset[str] | None]:
    return {**attribute_sections(), **dict(extra or {})}


@dataclass
class AttributionRun(AttributionResult):
    """What :func:`run_attribution` produced: the attribution result, the files written, the bank, W&B's message."""

    paths: dict[str, Path] = field(default_factory=dict)
    bank: ContributorBank | None = None
    wandb_message: str = ""


def _section(config: Mapping[str, Any], key: str, parent: str = "") -> Any:
    from .config import ConfigError

    if not isinstance(config, Mapping):
        raise ConfigError(f"config section `{parent}` must be a mapping of keys, got {type(config).__name__}.")
    if key not in config or config[key] is None:
        where = f"`{parent}` section has no `{key}` key" if parent else f"config has no `{key}` section"
        raise ConfigError(f"the {where}; see configs/digits.yaml for the expected layout.")
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
    from .io import output_lock

    out = Path(out_dir)
    setting = _prepare(config, out, progress)
    with output_lock(out):
        return _run(config, out, setting, progress, use_wandb)


def check_attribution_config(config: Mapping[str, Any], out_dir: str | Path) -> None:
    """Everything :func:`run_attribution` checks before its first model is loaded, nothing written: the files
    the config names, the estimator settings, the metadata (the registry is built), the plan, the
    generation settings and that ``out_dir`` can be written. Raises the first problem's one-line error."""
    _prepare(config, Path(out_dir), progress=False)


def _prepare(config: Mapping[str, Any], out: Path, progress: bool) -> _Setting:
    from .config import check_buildable, check_paths, instantiate
    from .contributors import ContributorRegistry
    from .generation import SamplingPlan, check_trainer_arguments
    from .io import check_output_folder
    from .responsibility import MembershipSpec

    check_output_folder(out)
    check_paths(config)  # every file the config names, before the first model is loaded
    settings = EstimatorSettings.from_config(config.get("estimator"))
    registry = instantiate(_section(config, "contributors"), "config.contributors")
    if not isinstance(registry, ContributorRegistry):
        raise ValueError(
            f"config.contributors must build a ContributorRegistry, got {type(registry).__name__}; give class_path: "
            "surrogateshap.contributors.ContributorRegistry.from_file and init_args: {path: <metadata file>}."
        )
    spec = MembershipSpec.from_config(config.get("membership"))
    plan_cfg = dict(_section(config, "plan"))
    plan = SamplingPlan(registry, plan_cfg.get("samples_per_contributor", 1), seed=plan_cfg.get("seed", 0),
                        per_unit=spec.kind != "plain")
    empty = [cid for cid, m in plan.samples_per_contributor.items() if m == 0]
    if empty:
        raise ValueError(
            f"contributor(s) {empty[:5]} get no samples (plan.samples_per_contributor is 0 for them): every player "
            "needs samples in the bank; set plan.samples_per_contributor to at least 1."
        )
    gen = _section(config, "generation")
    check_buildable(_section(gen, "backend", "generation"), "config.generation.backend")
    _check_named_objects(_section(gen, "extractors", "generation"), "generation.extractors", "a feature extractor")
    for key in ("paired_scorers", "source_images"):
        check_buildable(gen.get(key), f"config.generation.{key}")
    utilities = _check_named_objects(_section(config, "utilities"), "utilities", "a ContributorMetric")
    _check_roles(config.get("roles"))
    trainer_kwargs = dict(config.get("trainer") or {})
    check_trainer_arguments(trainer_kwargs)
    gen_args = _generation_arguments(gen, trainer_kwargs, progress)
    base_cfg = config.get("base")
    if base_cfg:
        check_buildable(_section(base_cfg, "backend", "base"), "config.base.backend")
        check_int(base_cfg.get("samples_per_contributor", 8), "base.samples_per_contributor", 1)
    check_v_empty(utilities, config.get("v_empty"), has_base=bool(base_cfg))
    return _Setting(settings, registry, spec, plan, plan_cfg, gen, gen_args)


def _check_named_objects(node: Any, where: str, what: str) -> list[str]:
    """A section mapping names to objects (``utilities``, ``generation.extractors``): its layout and that
    every entry can be built (:func:`~surrogateshap.config.check_buildable`). Returns the names."""
    from .config import ConfigError, check_buildable

    example = "{name: {class_path: ..., init_args: {...}}}"
    if not isinstance(node, Mapping) or not node:
        got = type(node).__name__ if not isinstance(node, Mapping) else "an empty mapping"
        raise ConfigError(f"config `{where}` must map each name to {what} ({example}), got {got}.")
    for name, entry in node.items():
        if not isinstance(entry, Mapping) or "class_path" not in entry:
            raise ConfigError(f"config `{where}.{name}` must be {what} given by class_path and init_args, "
                              f"got {entry!r:.60}.")
        check_buildable(entry, f"config.{where}.{name}")
    return [str(name) for name in node]


def _check_roles(node: Any) -> None:
    """``roles``: absent, a mapping contributor id -> role name, or a class_path building one."""
    from .config import ConfigError, check_buildable

    if node is None or (isinstance(node, Mapping) and "class_path" in node):
        check_buildable(node, "config.roles")
        return
    if not isinstance(node, Mapping) or not all(isinstance(v, str) for v in node.values()):
        raise ConfigError(f"config `roles` must map contributor ids to role names ({{id: role}}) or be a "
                          f"class_path building that mapping, got {node!r:.60}.")


def _generation_arguments(gen: Mapping[str, Any], trainer_kwargs: dict[str, Any], progress: bool) -> dict[str, Any]:
    """The keyword arguments of ``generate_bank`` from the ``generation`` section, checked."""
    scale = gen.get("guidance_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"generation.guidance_scale must be a finite number, got {scale!r}.")
    return {
        "guidance_scale": float(scale),
        "num_inference_steps": check_int(gen.get("num_inference_steps", 50), "generation.num_inference_steps", 1),
        "batch_size": check_int(gen.get("batch_size", 16), "generation.batch_size", 1),
        "trainer_kwargs": {"enable_progress_bar": progress, **trainer_kwargs},
    }


@dataclass(frozen=True)
class _Setting:
    """What :func:`run_attribution` checked before any work: the parts of the config, built."""

    settings: EstimatorSettings
    registry: Any
    spec: Any
    plan: Any
    plan_cfg: dict[str, Any]
    gen: Mapping[str, Any]
    gen_args: dict[str, Any]


def _run(config: Mapping[str, Any], out: Path, setting: _Setting, progress: bool,
         use_wandb: bool | None) -> AttributionRun:
    from .config import instantiate
    from .generation import SamplingPlan, generate_bank
    from .report import log_to_wandb, start_wandb_run, wandb_mode

    gen = setting.gen
    wandb_cfg = dict(config.get("wandb") or {})
    if use_wandb is None:
        use_wandb = bool(wandb_cfg.get("enabled", True))
    mode, wandb_note = wandb_mode() if use_wandb else ("disabled", "")
    if wandb_note:  # said at once, not after the attribution
        print(wandb_note, file=sys.stderr)
    timings: dict[str, float] = {}
    extractors = instantiate(gen["extractors"], "config.generation.extractors")
    gen_args = {
        **setting.gen_args,
        # scorers comparing each sample with its source training image (e.g. paired LPIPS)
        "paired_scorers": instantiate(gen.get("paired_scorers"), "config.generation.paired_scorers") or None,
        "source_images": instantiate(gen.get("source_images"), "config.generation.source_images"),
    }
    tic = time.perf_counter()
    backend = instantiate(gen["backend"], "config.generation.backend")
    bank = generate_bank(backend, setting.plan, extractors, out / "bank", **gen_args)
    timings["generation"] = time.perf_counter() - tic

    utilities = instantiate(_section(config, "utilities"), "config.utilities")
    base_bank = None
    base_cfg = config.get("base")
    if base_cfg:
        tic = time.perf_counter()
        base_backend = instantiate(base_cfg["backend"], "config.base.backend")
        base_plan = SamplingPlan(setting.registry, base_cfg.get("samples_per_contributor", 8),
                                 seed=setting.plan.seed, per_unit=setting.plan.units is not None)
        base_bank = generate_bank(base_backend, base_plan, extractors, out / "base_bank", **gen_args)
        timings["base_generation"] = time.perf_counter() - tic
    empties = resolve_v_empty(list(utilities), config.get("v_empty"), base_bank)
    roles = dict(instantiate(config.get("roles") or {}, "config.roles"))
    result = attribute_bank(
        bank, utilities, empties, setting.settings, membership=setting.spec, units=setting.plan.units,
        extractors=extractors, roles=roles, timings=timings,
        extra={"samples_per_contributor": setting.plan_cfg.get("samples_per_contributor")},
        progress=progress,
    )
    tic = time.perf_counter()
    paths = result.write(out)
    run = AttributionRun(result.results, result.document, result.membership, result.timings, paths, bank)
    run.timings["report"] = time.perf_counter() - tic
    if use_wandb:
        wandb_run, message = start_wandb_run(
            out, project=wandb_cfg.get("project", "surrogateshap"), name=wandb_cfg.get("name"),
            config={"estimator": setting.settings.to_dict(), "plan": setting.plan_cfg}, mode=mode,
        )
        if wandb_run is not None:
            try:
                log_to_wandb(wandb_run, run.document, paths)
                message = message or f"W&B run logged to {wandb_run.dir}"
            finally:
                wandb_run.finish()
        run.wandb_message = message
    return run
