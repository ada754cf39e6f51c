"""The digits setting: scikit-learn's digits as 20 contributors with planted roles, offline on a CPU.

- :mod:`.planting`: the planted data (:class:`DigitsPlanting`, :func:`digits_registry`, :func:`digits_roles`,
  :func:`reference_features`, :class:`DigitsTrainingImages`);
- :mod:`.diffusion`, :mod:`.features`, :mod:`.data`: the class-conditional DDPM and the digits feature
  network as LightningModules, and their data module (``surrogateshap fit --config configs/digits_ddpm.yaml``);
- :mod:`.demo`: ``surrogateshap demo`` (trains a DDPM first for another planting);
- :mod:`.retrain`: the retraining game, the ground truth the proxy is validated against;
- ``assets/``: the shipped models (:func:`asset_path`).

Names are imported on first use (PEP 562): the planting loads without Lightning or diffusers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

_EXPORTS = {
    "DiffusionTraining": ".diffusion",
    "DigitsContributors": ".planting",
    "DigitsDataModule": ".data",
    "DigitsExtractor": ".features",
    "DigitsFeatureNet": ".features",
    "DigitsPlanting": ".planting",
    "DigitsTrainingImages": ".planting",
    "FeatureNetTraining": ".features",
    "digits_registry": ".planting",
    "digits_roles": ".planting",
    "reference_features": ".planting",
    "run_demo": ".demo",
    "DIGITS_RETRAINING": ".retrain",
}

__all__ = [
    "DIGITS_RETRAINING",
    "DiffusionTraining",
    "DigitsContributors",
    "DigitsDataModule",
    "DigitsExtractor",
    "DigitsFeatureNet",
    "DigitsPlanting",
    "DigitsTrainingImages",
    "FeatureNetTraining",
    "asset_path",
    "digits_registry",
    "digits_roles",
    "reference_features",
    "run_demo",
]


def asset_path(name: str) -> Path:
    """The folder of a shipped model of this setting: ``"ddpm"``, ``"ddpm_shared"`` or ``"features"``.

    >>> asset_path("ddpm").name
    'ddpm'
    """
    return Path(__file__).resolve().parent / "assets" / name


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .data import DigitsDataModule
    from .demo import run_demo
    from .diffusion import DiffusionTraining
    from .features import DigitsExtractor, DigitsFeatureNet, FeatureNetTraining
    from .planting import (
        DigitsContributors,
        DigitsPlanting,
        DigitsTrainingImages,
        digits_registry,
        digits_roles,
        reference_features,
    )
    from .retrain import DIGITS_RETRAINING

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
