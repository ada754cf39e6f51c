"""The artists setting: a text-to-image model (Stable Diffusion layout, LoRA fine-tune) on 40 painters' captioned
pictures with planted roles, trained and shipped by the project, offline on a CPU.

- :mod:`.planting`: the planted data (:class:`ArtistsPlanting`, :class:`ArtistsContributors`,
  :func:`artists_registry`, :func:`artists_roles`);
- :mod:`.text`: the caption tokenizer (CLIP BPE) and text encoder;
- :mod:`.diffusion`, :mod:`.scorer`, :mod:`.data`: the autoencoder, the base model, the LoRA and the scorer
  network as LightningModules, and their data module
  (``surrogateshap fit --config configs/artists_{autoencoder,base,lora,scorer}.yaml``);
- :mod:`.retrain`: the retraining game (a LoRA per coalition), the ground truth the proxy is validated against;
- ``assets/``: the shipped models (:func:`asset_path`).

Names are imported on first use (PEP 562): the planting loads without Lightning or diffusers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

_EXPORTS = {
    "ARTISTS_RETRAINING": ".retrain",
    "ArtistsContributors": ".planting",
    "ArtistsDataModule": ".data",
    "ArtistsExtractor": ".scorer",
    "ArtistsScorer": ".scorer",
    "ArtistsTrainingImages": ".planting",
    "ArtistsPlanting": ".planting",
    "AutoencoderTraining": ".diffusion",
    "BaseModelTraining": ".diffusion",
    "LoraTraining": ".diffusion",
    "ScorerTraining": ".scorer",
    "artists_registry": ".planting",
    "artists_roles": ".planting",
    "cluster_centers": ".planting",
    "reference_features": ".planting",
}

__all__ = [
    "ARTISTS_RETRAINING",
    "ArtistsContributors",
    "ArtistsDataModule",
    "ArtistsExtractor",
    "ArtistsPlanting",
    "ArtistsScorer",
    "ArtistsTrainingImages",
    "AutoencoderTraining",
    "BaseModelTraining",
    "LoraTraining",
    "ScorerTraining",
    "artists_registry",
    "artists_roles",
    "asset_path",
    "cluster_centers",
    "reference_features",
]

ASSETS = ("autoencoder", "base", "lora", "scorer")


def asset_path(name: str) -> Path:
    """The folder of a shipped model of this setting: ``"autoencoder"``, ``"base"``, ``"lora"`` or ``"scorer"``.

    >>> asset_path("base").name
    'base'
    """
    if name not in ASSETS:
        raise ValueError(f"no shipped artists model {name!r}; the models are {list(ASSETS)}.")
    return Path(__file__).resolve().parent / "assets" / name


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .data import ArtistsDataModule
    from .diffusion import AutoencoderTraining, BaseModelTraining, LoraTraining
    from .planting import (
        ArtistsContributors,
        ArtistsPlanting,
        ArtistsTrainingImages,
        artists_registry,
        artists_roles,
        cluster_centers,
        reference_features,
    )
    from .retrain import ARTISTS_RETRAINING
    from .scorer import ArtistsExtractor, ArtistsScorer, ScorerTraining

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
