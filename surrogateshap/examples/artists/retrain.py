"""The retraining game of the artists setting: the LoRA fine-tuned from the base model on a coalition's pictures.

:data:`ARTISTS_RETRAINING` is what ``surrogateshap retrain --setting artists`` runs
(:func:`surrogateshap.games.retraining.run_retraining`), as the paper retrains its ArtBench LoRAs: each
coalition's LoRA starts from the *base* model and follows the shipped recipe (``configs/artists_lora.yaml``: same
rank, targets, learning rate, caption dropout and seed) on that coalition's captioned pictures only, for the
recipe's steps per picture (4,000 steps for the 1,920 pictures of the 40 artists: a coalition with half the
pictures trains 2,000 steps, the same number of epochs); the empty coalition is the base model (the config's
``base`` section), as the proxy's ``v_empty``. Each coalition is then prompted with its own members' captions
(the proxy bank's seeds) and scored.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...games.retraining import Retraining

__all__ = ["ARTISTS_RETRAINING", "coalition_steps", "lora_recipe_path", "recipe_steps", "train_coalition_lora"]


def lora_recipe_path() -> Path:
    """The shipped LoRA fine-tuning recipe, ``configs/artists_lora.yaml`` (a LightningCLI config)."""
    return Path(str(importlib.resources.files("surrogateshap.configs") / "artists_lora.yaml"))


def recipe_steps(n_pictures: int, total_pictures: int, steps: int) -> int:
    """Training steps for ``n_pictures`` when the recipe trains ``steps`` on ``total_pictures`` (same steps per
    picture, at least one).

    >>> recipe_steps(960, 1920, 4000), recipe_steps(41, 1920, 4000)
    (2000, 86)
    """
    return max(1, math.ceil(steps * n_pictures / total_pictures))


def coalition_steps(n_examples: Mapping[str, int], members: Sequence[str]) -> int:
    """The shipped recipe's training steps for a coalition: its steps per picture times the members' pictures.

    ``n_examples``: every artist's training pictures (``registry.n_examples``).
    """
    import yaml

    recipe = yaml.safe_load(lora_recipe_path().read_text(encoding="utf-8"))
    return recipe_steps(sum(n_examples[c] for c in members), sum(n_examples.values()),
                        int(recipe["trainer"]["max_steps"]))


def train_coalition_lora(config: Mapping[str, Any], members: list[str], model_dir: Path, *,
                         max_steps: int | None = None, train_seed: int | None = None, progress: bool = True) -> Any:
    """Fine-tune a LoRA of the config's base model on ``members``' pictures (reusing a finished ``model_dir``).

    Returns the config's ``generation.backend`` with ``lora_path`` set to the new LoRA. ``max_steps`` replaces
    the recipe's steps per picture (tests); ``train_seed`` the recipe's seed.
    """
    from ...config import instantiate
    from ..training import fit_recipe
    from .planting import ArtistsPlanting

    backend_cfg = copy.deepcopy(config["generation"]["backend"])
    if not (model_dir / "training.json").is_file():
        planting = ArtistsPlanting.from_config(config.get("data"))
        if max_steps is None:
            max_steps = coalition_steps(instantiate(config["contributors"], "config.contributors").n_examples, members)
        fit_recipe(lora_recipe_path(), model_dir, max_steps=max_steps, seed=train_seed, progress=progress,
                   model_args={"base_path": str(backend_cfg["init_args"]["model_path"])},
                   data_args={"planting": planting.to_config(), "contributors": list(members)})
    backend_cfg["init_args"]["lora_path"] = str(model_dir)
    return instantiate(backend_cfg, "config.generation.backend")


#: the artists setting's retraining: a LoRA from the base model per coalition, prompted with its captions
ARTISTS_RETRAINING = Retraining(train=train_coalition_lora)
