"""``surrogateshap demo --setting artists``: the text-to-image setting with the shipped models, one command.

:func:`run_demo` loads ``configs/artists_sd.yaml`` (shipped inside the package), checks that the shipped
LoRA was fine-tuned on the config's planting (its ``training.json`` records it), then runs
:func:`~surrogateshap.pipeline.run_attribution`.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...config import load_config
from ..training import trained_planting
from .planting import ArtistsPlanting

__all__ = ["artists_sections", "check_lora_planting", "default_config_path", "run_demo"]


def artists_sections() -> dict[str, frozenset[str] | None]:
    """The sections of an artists config: those of ``surrogateshap attribute`` and the planting (``data``)."""
    from ...pipeline import attribute_sections

    return {**attribute_sections(), "data": None}


def default_config_path() -> Path:
    """The shipped config, ``configs/artists_sd.yaml``."""
    return Path(str(importlib.resources.files("surrogateshap.configs") / "artists_sd.yaml"))


def check_lora_planting(config: Mapping[str, Any]) -> None:
    """Refuse a config whose planting is not the one its LoRA (``paths.lora``) was fine-tuned on."""
    wanted = ArtistsPlanting.from_config(config.get("data")).to_config()
    lora = Path(str(config["paths"]["lora"]))
    folder = lora if lora.is_dir() else lora.parent
    trained = trained_planting(folder, lambda planting: ArtistsPlanting.from_config(planting).to_config())
    record = folder / "training.json"
    if trained != wanted:
        changed = sorted(k for k in wanted if trained is None or trained.get(k) != wanted[k])
        raise ValueError(
            f"the config's planting (data: {changed} differ) is not the one the LoRA at paths.lora was fine-tuned on "
            f"({record}): fine-tune one for it with `surrogateshap fit --config configs/artists_lora.yaml` and that "
            "planting under data.init_args.planting, and set paths.lora to its folder."
        )


def run_demo(
    out_dir: str | Path,
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    progress: bool = True,
    use_wandb: bool | None = None,
):
    """Run the artists setting into ``out_dir`` and return the :class:`~surrogateshap.pipeline.AttributionRun`.

    The config (strict: :func:`artists_sections`), its files, the planting and ``out_dir`` are checked
    before anything is generated or written.
    """
    from ...config import check_paths
    from ...pipeline import run_attribution

    path = Path(config_path) if config_path is not None else default_config_path()
    config = load_config(path, overrides, sections=artists_sections())
    check_paths(config)
    check_lora_planting(config)
    return run_attribution(config, out_dir, progress=progress, use_wandb=use_wandb)
