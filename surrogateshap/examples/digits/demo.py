"""The embedded default: planted digits contributors, the shipped models, one command to attribute.

``run_demo(out_dir)`` loads ``configs/digits.yaml`` (shipped inside the package), makes sure a
DDPM trained on the config's planting exists (the shipped one, or one trained now with the
recipe of ``configs/digits_ddpm.yaml`` and cached under ``out_dir/models``), then runs
:func:`~surrogateshap.pipeline.run_attribution`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...config import load_config
from ..training import fit_recipe, trained_planting
from .planting import DigitsPlanting

__all__ = [
    "default_config_path", "digits_sections", "ensure_generator", "recipe_config_path", "run_demo", "train_generator",
]


def digits_sections() -> dict[str, frozenset[str] | None]:
    """The sections of a digits config: those of ``surrogateshap attribute``, the planting (``data``, checked by
    :class:`DigitsPlanting`) and ``training`` (``max_steps`` of a DDPM trained for another planting)."""
    from ...pipeline import attribute_sections

    return {**attribute_sections(), "data": None, "training": frozenset({"max_steps"})}


def default_config_path() -> Path:
    """The shipped demo config, ``configs/digits.yaml``."""
    return Path(str(importlib.resources.files("surrogateshap.configs") / "digits.yaml"))


def recipe_config_path() -> Path:
    """The shipped DDPM training recipe, ``configs/digits_ddpm.yaml`` (a LightningCLI config)."""
    return Path(str(importlib.resources.files("surrogateshap.configs") / "digits_ddpm.yaml"))


def _trained_planting(model_dir: Path) -> dict[str, Any] | None:
    return trained_planting(model_dir, lambda planting: DigitsPlanting.from_config(planting).to_config())


def train_generator(
    planting: DigitsPlanting,
    out_dir: str | Path,
    *,
    max_steps: int | None = None,
    progress: bool = True,
    contributors: list[str] | None = None,
    seed: int | None = None,
) -> Path:
    """Train the class-conditional DDPM on ``planting`` with the shipped recipe; returns the model folder.

    The recipe is ``configs/digits_ddpm.yaml`` with its planting replaced, its model written to
    ``out_dir`` (diffusers layout + ``training.json``) and logs under ``out_dir.parent/logs``;
    ``max_steps`` shortens it (tests); ``contributors`` trains on a coalition's data only
    (retraining), with the same recipe, steps and seed; ``seed`` replaces the recipe's
    ``seed_everything`` (weight initialisation, batch order and diffusion noise), e.g. to measure
    how much a retrained utility varies with the training seed.
    """
    data_args: dict[str, Any] = {"planting": planting.to_config()}
    if contributors is not None:
        data_args["contributors"] = list(contributors)
    return fit_recipe(recipe_config_path(), out_dir, data_args=data_args,
                      model_args={"num_labels": planting.num_labels}, max_steps=max_steps, seed=seed, progress=progress)


def ensure_generator(config: Mapping[str, Any], out_dir: str | Path, *, max_steps: int | None = None,
                     progress: bool = True) -> Path | None:
    """The DDPM folder for the config's planting: None when ``paths.ddpm`` was trained on it, else a cached
    or newly trained model under ``out_dir/models/ddpm-<planting hash>``."""
    planting = DigitsPlanting.from_config(config.get("data") or {})
    wanted = planting.to_config()
    shipped = Path(str(config["paths"]["ddpm"]))
    if _trained_planting(shipped) == wanted:
        return None
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:12]
    cached = Path(out_dir) / "models" / f"ddpm-{digest}"
    if _trained_planting(cached) == wanted:
        return cached
    print(
        f"The config's planting differs from the one {shipped} was trained on: training a DDPM for it "
        f"(recipe configs/digits_ddpm.yaml) into {cached}."
    )
    return train_generator(planting, cached, max_steps=max_steps, progress=progress)


def run_demo(
    out_dir: str | Path,
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    progress: bool = True,
    use_wandb: bool | None = None,
):
    """Run the digits demo into ``out_dir`` and return the :class:`~surrogateshap.pipeline.AttributionRun`.

    The config (strict: :func:`digits_sections`), its files, the planting and ``out_dir`` are checked
    before anything is trained, generated or written.
    """
    from ...io import output_lock
    from ...pipeline import check_attribution_config

    path = Path(config_path) if config_path is not None else default_config_path()
    config = load_config(path, overrides, sections=digits_sections())
    DigitsPlanting.from_config(config.get("data") or {})
    check_attribution_config(config, out_dir)
    training = dict(config.get("training") or {})
    with output_lock(out_dir):
        return _run_demo(path, config, out_dir, overrides, training, progress, use_wandb)


def _run_demo(path: Path, config: Mapping[str, Any], out_dir: str | Path,
              overrides: Mapping[str, Any] | Iterable[str] | None, training: Mapping[str, Any], progress: bool,
              use_wandb: bool | None):
    from ...pipeline import run_attribution

    model = ensure_generator(config, out_dir, max_steps=training.get("max_steps"), progress=progress)
    if model is not None:
        extra = dict(overrides) if isinstance(overrides, Mapping) else list(overrides or [])
        if isinstance(extra, dict):
            extra["paths.ddpm"] = str(model)
        else:
            extra.append(f"paths.ddpm={model}")
        config = load_config(path, extra, sections=digits_sections())
    return run_attribution(config, out_dir, progress=progress, use_wandb=use_wandb)
