"""The retraining game: a coalition's model trained on its data alone, generated and scored like the proxy.

This is the ground truth a proxy game stands in for. For every coalition S (a row of a CSV of 0/1
columns, one per contributor) :func:`run_retraining`

1. trains the setting's model on S's training data only, with the shipped recipe (the setting's
   :class:`Retraining` says how: the digits DDPM from scratch, the artists' LoRA from the base model);
   the empty coalition is the config's ``base`` model, as the proxy's ``v_empty``;
2. generates, with the config's plan seeds (sample j of contributor c has the proxy bank's seed),
   ``m`` samples per member of S conditioned on its labels or captions (the coalition's conditional
   mixture, weighted by data size as in the proxy game); when members share conditions (the same
   label, colliding captions) the samples are drawn per unit of shared conditions
   (:func:`surrogateshap.membership.condition_units` of S's data), weighted by S's data in each.
   Settings whose guidance can switch the condition off (``Retraining.unconditional``) also generate
   as many samples with guidance scale 0, the retrained model's unconditional distribution;
3. scores every utility of the config, and appends a row to ``retrain.csv`` (rewritten atomically):
   the coalition's mask, ``<utility>``, ``<utility>_uncond`` where generated, and the seconds spent
   training, generating and scoring.

A rerun skips coalitions already in ``retrain.csv`` and reuses trained models and banks, so a killed
run resumes where it stopped. ``train_seed`` retrains with another training seed (into another
folder) to measure how much the ground truth itself varies.

``workers > 1`` retrains that many coalitions at once in separate processes, each with an equal share
of the CPU threads: small models do not keep several threads busy, so parallel one-thread retrains
finish more coalitions per hour than one multi-thread retrain. The parent process alone writes
``retrain.csv``.

>>> from surrogateshap.examples.digits.retrain import DIGITS_RETRAINING
>>> DIGITS_RETRAINING.unconditional
True
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..bank import ContributorBank
from ..checks import check_int, check_seed
from ..coalitions import read_coalitions
from ..io import atomic_write_text, check_output_folder, output_lock
from ..tables import read_csv_table, read_text
from ..threads import usable_cores

__all__ = ["RESULTS_FILE", "SETTINGS_FILE", "Retraining", "TrainCoalition", "retrain_coalition", "run_retraining"]

RESULTS_FILE = "retrain.csv"
SETTINGS_FILE = "retrain_settings.json"


class TrainCoalition(Protocol):
    """Train a setting's model on ``members``' data into ``model_dir``; return the generation backend for it.

    It must reuse a model already finished in ``model_dir`` (its ``training.json`` exists), and be a module-level
    function (``workers > 1`` sends it to other processes).

    >>> from surrogateshap.examples.artists.retrain import ARTISTS_RETRAINING
    >>> ARTISTS_RETRAINING.train.__name__
    'train_coalition_lora'
    """

    def __call__(self, config: Mapping[str, Any], members: list[str], model_dir: Path, *, max_steps: int | None,
                 train_seed: int | None, progress: bool) -> Any: ...


@dataclass(frozen=True)
class Retraining:
    """How a setting retrains: ``train`` (a :class:`TrainCoalition`) and whether to also generate with guidance 0.

    >>> from surrogateshap.examples.artists.retrain import ARTISTS_RETRAINING
    >>> ARTISTS_RETRAINING.unconditional
    False
    """

    train: TrainCoalition
    unconditional: bool = False


def _score(bank: ContributorBank, utilities: Mapping[str, Any], weights: np.ndarray) -> dict[str, float]:
    from .proxy import ProxyGame

    full = np.ones((1, len(bank.contributor_ids)), dtype=bool)
    return {
        name: float(ProxyGame(bank, copy.deepcopy(metric), v_empty=0.0, weights=weights)(full)[0])
        for name, metric in utilities.items()
    }


def retrain_coalition(
    config: Mapping[str, Any],
    mask: np.ndarray,
    work_dir: str | Path,
    retraining: Retraining,
    *,
    max_steps: int | None = None,
    train_seed: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Retrain on coalition ``mask`` (over the config's contributors) and score it; see the module docstring.

    ``train_seed`` replaces the recipe's training seed (None: the shipped model's). Training takes minutes:

    >>> row = retrain_coalition(config, mask, "out/rt/s0", DIGITS_RETRAINING)  # doctest: +SKIP
    >>> sorted(row)  # doctest: +SKIP
    ['diversity', 'diversity_uncond', 'fid', ..., 'generate_seconds', 'score_seconds', 'train_seconds']
    """
    from ..config import instantiate
    from ..contributors import ContributorRegistry
    from ..generation import SamplingPlan, generate_bank

    work = Path(work_dir)
    registry = instantiate(config["contributors"], "config.contributors")
    ids = registry.contributor_ids
    members = [cid for cid, keep in zip(ids, mask) if keep]
    row: dict[str, float] = {"train_seconds": 0.0}
    gen = config["generation"]
    extractors = instantiate(gen["extractors"], "config.generation.extractors")
    utilities = instantiate(config["utilities"], "config.utilities")
    if members:
        tic = time.perf_counter()
        backend = retraining.train(config, members, work / "model", max_steps=max_steps, train_seed=train_seed,
                                   progress=progress)
        row["train_seconds"] = time.perf_counter() - tic
        examples = [ex for ex in registry.examples if ex.contributor in members]
        subset = ContributorRegistry(examples, registry.condition_kind, num_labels=registry.num_labels,
                                     source="coalition")
        samples = int(config["plan"].get("samples_per_contributor", 1))
    else:  # the empty coalition: the base model (before fine-tuning, or the untrained network), as v_empty
        if not config.get("base"):
            raise ValueError("the empty coalition is the base model: the config needs a `base` section (its "
                             "backend before fine-tuning, or the untrained network).")
        backend = instantiate(config["base"]["backend"], "config.base.backend")
        subset = registry
        samples = int(config["base"].get("samples_per_contributor", 1))
    # per unit of S's shared conditions; without shared conditions the units are the members themselves
    plan = SamplingPlan(subset, samples, seed=int(config["plan"].get("seed", 0)), per_unit=True)
    units = plan.registry
    trainer_kwargs = {"enable_progress_bar": progress, **dict(config.get("trainer") or {})}
    tic = time.perf_counter()
    common = {"num_inference_steps": int(gen.get("num_inference_steps", 50)),
              "batch_size": int(gen.get("batch_size", 16)), "trainer_kwargs": trainer_kwargs}
    conditional = generate_bank(backend, plan, extractors, work / "bank",
                                guidance_scale=float(gen.get("guidance_scale", 1.0)), **common)
    unconditional = None
    if retraining.unconditional:  # guidance 0: eps = eps_null, the unconditional distribution
        unconditional = generate_bank(backend, plan, extractors, work / "bank_uncond", guidance_scale=0.0, **common)
    row["generate_seconds"] = time.perf_counter() - tic
    tic = time.perf_counter()
    n_examples = np.array([float(units.n_examples[c]) for c in conditional.contributor_ids])
    if not members:  # v_empty weighs the base bank's samples alike (ProxyGame's base bank)
        n_examples = np.ones_like(n_examples)
    row.update(_score(conditional, utilities, n_examples))
    if unconditional is not None:
        row.update({f"{k}_uncond": v for k, v in _score(unconditional, utilities, np.ones_like(n_examples)).items()})
    row["score_seconds"] = time.perf_counter() - tic
    return row


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Record the retraining settings of a folder, or refuse a rerun with different ones."""
    if path.exists():
        text = read_text(path, "retraining settings file")
        try:
            recorded = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"retraining settings file {path} is not valid JSON ({err}); it records the settings "
                             f"of the retrains in {path.parent}: restore it, or give another --out folder.") from None
        if recorded != settings:
            raise ValueError(
                f"{path.parent} holds retrains with settings {recorded}, not {settings}; rerun with those "
                "settings or give another --out folder."
            )
    else:
        atomic_write_text(path, json.dumps(settings) + "\n")


def _finished_results(path: Path) -> pd.DataFrame:
    """The rows of an earlier run's ``retrain.csv`` (checked: a table with a ``coalition`` column)."""
    fix = f"it holds the finished retrains of {path.parent}: restore it, or move it away to retrain all coalitions."
    table = read_csv_table(path, "retraining results file", fix)
    if "coalition" not in table.header:
        raise ValueError(f"retraining results file {path} has no 'coalition' column; {fix}")
    return pd.read_csv(path, dtype={"coalition": str})


def _share_threads(threads: int) -> None:
    """Worker initializer: use ``threads`` intra-op threads (the worker's share of the CPU)."""
    import torch

    torch.set_num_threads(threads)


def run_retraining(
    config: Mapping[str, Any],
    coalitions: str | Path,
    out_dir: str | Path,
    retraining: Retraining,
    *,
    max_steps: int | None = None,
    train_seed: int | None = None,
    progress: bool = True,
    workers: int = 1,
) -> pd.DataFrame:
    """Retrain and score every coalition of the CSV ``coalitions`` not yet in ``out_dir/retrain.csv``.

    ``workers`` coalitions are retrained at once, each in its own process (see the module
    docstring); rows are written in the order of the coalitions file whatever order they finish in.
    ``max_steps`` and ``train_seed`` (None: the recipe's) are recorded in ``out_dir/retrain_settings.json``;
    a rerun with other settings into the same folder is refused (its rows would mix two recipes).

    What ``surrogateshap retrain --coalitions coalitions.csv --out out/retrain`` runs (one DDPM training each):

    >>> frame = run_retraining(config, "coalitions.csv", "out/retrain", DIGITS_RETRAINING)  # doctest: +SKIP
    >>> list(frame.columns[:3])  # doctest: +SKIP
    ['coalition', 'digit0_a', 'digit0_b']
    """
    from ..config import instantiate

    check_int(workers, "workers", 1)
    if max_steps is not None:
        check_int(max_steps, "max_steps", 1)
    if train_seed is not None:
        check_seed(train_seed, "train_seed")
    out = check_output_folder(out_dir)
    ids = instantiate(config["contributors"], "config.contributors").contributor_ids
    names, masks = read_coalitions(coalitions, ids)
    unsafe = [n for n in names if n in (".", "..") or "/" in n or "\\" in n or n.startswith(".")]
    if unsafe:
        raise ValueError(f"coalitions file {coalitions}: coalition name {unsafe[0]!r} would not be a folder inside "
                         "--out (each retrain is written to OUT/coalitions/<name>); use names without '/' or a "
                         "leading '.'.")
    with output_lock(out):
        return _retrain_all(config, names, masks, ids, out, retraining, max_steps, train_seed, progress, workers)


def _retrain_all(config: Mapping[str, Any], names: list[str], masks: np.ndarray, ids: list[str], out: Path,
                 retraining: Retraining, max_steps: int | None, train_seed: int | None, progress: bool,
                 workers: int) -> pd.DataFrame:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    _check_settings(out / SETTINGS_FILE, {"max_steps": max_steps, "train_seed": train_seed})
    results = out / RESULTS_FILE
    done = _finished_results(results) if results.exists() else pd.DataFrame()
    finished = set(done["coalition"]) if len(done) else set()
    rows = done.to_dict("records") if len(done) else []
    todo = [(name, mask) for name, mask in zip(names, masks) if name not in finished]
    position = {name: k for k, name in enumerate(names)}

    def record(name: str, mask: np.ndarray, scores: Mapping[str, float]) -> None:
        rows.append({"coalition": name, **dict(zip(ids, mask.astype(int).tolist())), **scores})
        # rows already in the file first, then the coalitions file's order
        rows.sort(key=lambda r: (r["coalition"] in position, position.get(r["coalition"], 0)))
        atomic_write_text(results, pd.DataFrame(rows).to_csv(index=False))

    kwargs = {"max_steps": max_steps, "train_seed": train_seed}
    bar = tqdm(total=len(todo), desc="retraining", unit="coalition", disable=not progress)
    if workers == 1 or len(todo) < 2:
        for name, mask in todo:
            record(name, mask, retrain_coalition(config, mask, out / "coalitions" / name, retraining, **kwargs,
                                                 progress=progress))
            bar.update()
    else:
        threads = max(1, usable_cores() // workers)
        pool = ProcessPoolExecutor(
            min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
            initializer=_share_threads, initargs=(threads,),
        )
        try:
            jobs = {
                pool.submit(retrain_coalition, dict(config), mask, out / "coalitions" / name, retraining, **kwargs,
                            progress=False): (name, mask)
                for name, mask in todo
            }
            for job in as_completed(jobs):
                record(*jobs[job], job.result())
                bar.update()
        finally:
            pool.shutdown(cancel_futures=True)
    bar.close()
    return pd.DataFrame(rows)
