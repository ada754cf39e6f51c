"""From a config to attribution outputs: banks -> proxy games -> SurrogateSHAP -> files, plots, W&B.

:func:`attribute_bank` is the bank-level step (used by the command line and by
``SurrogateShapCallback``); :func:`run_attribution` runs a whole configured setting.

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
- ``estimator``: ``method``, ``budget``, ``seed``, ``n_holdout`` and ``options`` (estimator options).
- ``trainer`` (optional): Lightning Trainer arguments for generation (accelerator, precision...).
- ``wandb`` (optional): ``project``, ``name``, ``enabled``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bank import ContributorBank
from .coalitions import sample_coalitions
from .estimators import estimate
from .evaluation import lds
from .games import CachedGame
from .games.proxy import ProxyGame

__all__ = ["AttributionRun", "attribute_bank", "holdout_coalitions", "run_attribution"]


def holdout_coalitions(n_players: int, n_holdout: int, seed: int) -> np.ndarray:
    """``n_holdout`` distinct coalitions drawn with the datamodel distribution (alpha = 0.5), for LDS.

    Drawn from a seed stream separate from the estimator's, so they are held out from its fit
    up to chance coincidences; the empty and the full coalition are left out.
    """
    sample = sample_coalitions(n_players, n_holdout + 2, "datamodel", seed=seed + 7919, alpha=0.5)
    masks = sample.masks
    return masks[masks.any(axis=1) & ~masks.all(axis=1)]


def attribute_bank(
    bank: ContributorBank,
    utilities: Mapping[str, Any],
    v_empty: Mapping[str, float | ContributorBank],
    *,
    method: str = "surrogateshap",
    budget: int = 256,
    seed: int = 0,
    n_holdout: int = 24,
    options: Mapping[str, Any] | None = None,
    weights: Sequence[float] | Mapping[str, float] | None = None,
    membership: Any = None,
    progress: bool = True,
) -> tuple[list, dict[str, float]]:
    """Attribute every utility on ``bank``: one proxy game each, estimated and scored by LDS.

    ``utilities`` maps names to fresh ``ContributorMetric`` objects (deep-copied, so the caller's
    are left untouched); ``v_empty`` gives each one's empty-coalition value (a number or a bank of
    the base model). With a ``SoftMembership`` the bank holds units of shared conditions and the
    players are the membership's contributors. Returns the
    :class:`~surrogateshap.report.UtilityResult` list and timings (``utility_evaluation``,
    ``estimation`` seconds).
    """
    from tqdm.auto import tqdm

    from .report import UtilityResult

    results, timings = [], {"utility_evaluation": 0.0, "estimation": 0.0}
    players = bank.contributor_ids if membership is None else membership.contributor_ids
    holdout = holdout_coalitions(len(players), n_holdout, seed) if n_holdout else None
    for name in tqdm(list(utilities), desc="attributing", unit="utility", disable=not progress):
        metric = copy.deepcopy(utilities[name])
        game = CachedGame(ProxyGame(bank, metric, v_empty[name], weights=weights, membership=membership))
        # the estimator's evaluations and its fitting are timed apart through the cache's own clock
        start = time.perf_counter()
        attribution = estimate(game, method, budget=budget, seed=seed, **dict(options or {}))
        total = time.perf_counter() - start
        attribution.players = list(players)
        evaluation = game.seconds
        score = None
        if holdout is not None and len(holdout) >= 3:
            tic = time.perf_counter()
            observed = game.game(holdout)
            evaluation += time.perf_counter() - tic
            score = lds(attribution, holdout, observed)
        timings["utility_evaluation"] += evaluation
        timings["estimation"] += total - game.seconds
        higher = getattr(metric, "higher_is_better", None)
        results.append(
            UtilityResult(
                name=name,
                attribution=attribution,
                higher_is_better=bool(higher) if higher is not None else True,
                lds=score,
                n_holdout=0 if holdout is None else int(len(holdout)),
            )
        )
    return results, timings


@dataclass
class AttributionRun:
    """What :func:`run_attribution` produced: results, the output document and the files written."""

    results: list
    document: dict[str, Any]
    paths: dict[str, Path]
    bank: ContributorBank
    wandb_message: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    membership: Any = None


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
    from .report import attribution_document, log_to_wandb, start_wandb_run, write_outputs
    from .responsibility import MembershipSpec

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    registry = instantiate(_section(config, "contributors"), "config.contributors")
    if not isinstance(registry, ContributorRegistry):
        raise ValueError(f"config.contributors must build a ContributorRegistry, got {type(registry).__name__}.")
    spec = MembershipSpec.from_config(config.get("membership"))
    units = spec.units(registry)
    plan_registry = registry if units is None else units.registry
    plan_cfg = dict(_section(config, "plan"))
    plan = SamplingPlan(plan_registry, plan_cfg.get("samples_per_contributor", 1), seed=int(plan_cfg.get("seed", 0)))
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
    empties: dict[str, Any] = dict(config.get("v_empty") or {})
    base_cfg = config.get("base")
    if base_cfg:
        tic = time.perf_counter()
        base_backend = instantiate(base_cfg["backend"], "config.base.backend")
        base_plan = SamplingPlan(plan_registry, int(base_cfg.get("samples_per_contributor", 8)), seed=plan.seed)
        base_bank = generate_bank(base_backend, base_plan, extractors, out / "base_bank", **gen_args)
        timings["base_generation"] = time.perf_counter() - tic
        for name in utilities:
            empties.setdefault(name, base_bank)
    missing = [name for name in utilities if empties.get(name) is None]
    if missing:
        raise ValueError(
            f"no v_empty for utilities {missing}: give a `base` model section (its bank measures the empty "
            "coalition) or numbers under `v_empty`."
        )
    tic = time.perf_counter()
    membership, membership_info = spec.apply(units, bank, extractors)
    if membership is not None:
        timings["membership"] = time.perf_counter() - tic
        membership.save(out / "membership.npz")  # the responsibility of every bank sample (sparse)
    est = dict(config.get("estimator") or {})
    method, budget = est.get("method", "surrogateshap"), int(est.get("budget", 256))
    results, step_times = attribute_bank(
        bank, utilities, empties, method=method, budget=budget, seed=int(est.get("seed", 0)),
        n_holdout=int(est.get("n_holdout", 24)), options=est.get("options") or {}, membership=membership,
        progress=progress,
    )
    timings.update(step_times)
    roles = dict(instantiate(config.get("roles") or {}, "config.roles"))
    contributors = [
        {"id": cid, "n_examples": int(registry.n_examples[cid]), **({"role": roles[cid]} if cid in roles else {})}
        for cid in registry.contributor_ids
    ]
    document = attribution_document(
        contributors, results, method=method, budget=budget, timings=timings,
        extra={
            "bank_samples": len(bank), "samples_per_contributor": plan_cfg.get("samples_per_contributor"),
            **({"membership": membership_info} if membership_info else {}),
        },
    )
    tic = time.perf_counter()
    paths = write_outputs(out, document, results)
    timings["report"] = time.perf_counter() - tic
    message = ""
    wandb_cfg = dict(config.get("wandb") or {})
    if use_wandb is None:
        use_wandb = bool(wandb_cfg.get("enabled", True))
    if use_wandb:
        run, message = start_wandb_run(
            out, project=wandb_cfg.get("project", "surrogateshap"), name=wandb_cfg.get("name"),
            config={"estimator": est, "plan": plan_cfg},
        )
        if run is not None:
            try:
                log_to_wandb(run, document, paths)
                message = message or f"W&B run logged to {run.dir}"
            finally:
                run.finish()
    return AttributionRun(results, document, paths, bank, message, timings, membership)
