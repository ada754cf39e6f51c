"""The retraining game of the digits setting: the class-conditional DDPM trained from scratch on a coalition's data.

:data:`DIGITS_RETRAINING` is what ``surrogateshap retrain`` runs for this setting
(:func:`surrogateshap.games.retraining.run_retraining`): each coalition's DDPM is trained with the shipped recipe
(``configs/digits_ddpm.yaml``: same steps, seed and label layout), the empty coalition is the untrained network of
the config's ``base`` section, and every coalition is also generated with guidance scale 0 (the null label only:
the retrained model's unconditional distribution), scored as ``<utility>_uncond``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...games.retraining import Retraining

__all__ = ["DIGITS_RETRAINING", "train_coalition_ddpm"]


def train_coalition_ddpm(config: Mapping[str, Any], members: list[str], model_dir: Path, *,
                         max_steps: int | None = None, train_seed: int | None = None, progress: bool = True) -> Any:
    """Train the DDPM on ``members``' data with the shipped recipe (reusing a finished ``model_dir``); its backend.

    ``train_seed`` replaces the recipe's seed; the backend is the config's ``generation.backend`` on the new model.
    """
    from ...config import instantiate
    from .demo import train_generator
    from .planting import DigitsPlanting

    if not (model_dir / "training.json").is_file():
        planting = DigitsPlanting.from_config(config.get("data") or {})
        train_generator(planting, model_dir, max_steps=max_steps, progress=progress, contributors=members,
                        seed=train_seed)
    backend_cfg = copy.deepcopy(config["generation"]["backend"])
    backend_cfg["init_args"]["path"] = str(model_dir)
    return instantiate(backend_cfg, "config.generation.backend")


#: the digits setting's retraining: the DDPM from scratch, and the null label's samples beside the labels'
DIGITS_RETRAINING = Retraining(train=train_coalition_ddpm, unconditional=True)
