"""The Lightning data module of the artists setting: what each of its models is trained on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ...checks import check_coalition
from .planting import ArtistsContributors, ArtistsPlanting

__all__ = ["ArtistsDataModule", "CaptionedImages"]

Task = Literal["autoencoder", "base", "lora", "scorer"]
TASKS = ("autoencoder", "base", "lora", "scorer")


class CaptionedImages(Dataset):
    """Pictures (N, 3, H, W) in [0, 1] with their captions; items are ``(image in [-1, 1], caption)``."""

    def __init__(self, images: np.ndarray, captions: Sequence[str]) -> None:
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions.")
        self.images = torch.from_numpy(np.asarray(images, np.float32) * 2.0 - 1.0)
        self.captions = list(captions)

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        return self.images[index], self.captions[index]


class ArtistsDataModule(pl.LightningDataModule):
    """The artists planting's pictures, as each model of the setting learns them.

    ``task="autoencoder"`` and ``task="base"``: the base corpus (random styles, generic captions),
    what the autoencoder and the base text-to-image model are pretrained on. ``task="lora"``: the
    artists' planted training pictures with captions naming them (the contributors' fine-tune);
    ``contributors`` restricts it to a coalition (for retraining). Batches are
    ``(images (B, 3, 32, 32) in [-1, 1], captions: list[str])``. ``task="scorer"``: clean, spoiled and marked
    copies of the base corpus in [0, 1] with their targets (:func:`~surrogateshap.examples.artists.scorer.
    augmented_copies`); validation: the same copies of the artists' held-out clean pictures.

    >>> small = {"n_artists": 8, "degraded": ["artist01"], "marker_artist": "artist02", "homonyms": []}
    >>> module = ArtistsDataModule(small, task="lora", contributors=["artist01"])
    >>> module.setup(); images, captions = next(iter(module.train_dataloader()))
    >>> images.shape[1:], all(c.startswith("a painting of a") for c in captions)
    (torch.Size([3, 32, 32]), True)
    """

    def __init__(
        self,
        planting: Mapping[str, Any] | ArtistsPlanting | None = None,
        task: Task = "base",
        batch_size: int = 64,
        num_workers: int = 0,
        contributors: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
        if contributors is not None and task != "lora":
            raise ValueError("contributors (a coalition) only applies to task='lora'.")
        self.planting = planting if isinstance(planting, ArtistsPlanting) else ArtistsPlanting.from_config(planting)
        self.task = task
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.contributors = check_coalition(contributors, self.planting.contributor_ids)
        self.save_hyperparameters({"planting": self.planting.to_config(), "task": task,
                                   "contributors": self.contributors, "seed": self.seed})

    def setup(self, stage: str | None = None) -> None:
        """Paint the planting (a few seconds)."""
        data = ArtistsContributors.build(self.planting)
        self.val_set = None
        if self.task == "scorer":
            from .scorer import augmented_copies

            train = augmented_copies(data.base_images, data.base_digits, self.seed)
            val = augmented_copies(data.heldout_images, data.heldout_digits, self.seed + 1)
            self.train_set = TensorDataset(*map(torch.from_numpy, train))
            self.val_set = TensorDataset(*map(torch.from_numpy, val))
            return
        if self.task != "lora":
            self.train_set = CaptionedImages(data.base_images, data.base_captions)
            return
        keep = np.ones(len(data.captions), bool)
        if self.contributors is not None:
            keep = np.isin(data.contributor_index, [data.contributor_ids.index(c) for c in self.contributors])
        self.train_set = CaptionedImages(data.images[keep], [c for c, k in zip(data.captions, keep) if k])

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (the order follows Lightning's seed)."""
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader | list:
        """The artists' held-out clean pictures, augmented (scorer task only)."""
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=256, num_workers=self.num_workers)
