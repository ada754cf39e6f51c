"""Lightning data modules of the digits setting: the planted generator data and the feature-network data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ...checks import check_coalition
from .planting import CORNERS, DigitsContributors, DigitsPlanting, add_marker, corrupt

__all__ = ["DEGRADED_CLASS", "DigitsDataModule"]

#: class index of the feature network's "degraded" class (after the ten digits)
DEGRADED_CLASS = 10


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's digits, split and planted as ``planting`` says.

    ``task="generator"``: the contributors' planted training images in [-1, 1] with the
    contributor index as label (what the class-conditional DDPM learns). ``task="features"``:
    the contributors' *clean* images in [0, 1] with a class target and a marker flag; every image
    appears three times: as is (target its digit, marker 0), with a bright square of random size
    (1-3 px) in a random corner (its digit, marker 1), and photometrically distorted without a
    marker (inverted, noisy or blurred at a random strength; target 10 = *degraded*, marker 0).
    All draws come from ``seed``. Validation is the held-out split, treated the same way.

    Parameters
    ----------
    planting : a :class:`DigitsPlanting` or its config mapping (None: the shipped planting).
    task : ``"generator"`` or ``"features"``.
    batch_size, num_workers : DataLoader settings (training shuffles with Lightning's seed).
    seed : seed of the marker augmentation.
    contributors : ``task="generator"`` only: train on these contributors' images alone (a
        coalition, for retraining); labels keep their full-setting indices. None: everyone.
    """

    def __init__(
        self,
        planting: Mapping[str, Any] | DigitsPlanting | None = None,
        task: Literal["generator", "features"] = "generator",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        contributors: list[str] | None = None,
    ) -> None:
        super().__init__()
        if task not in ("generator", "features"):
            raise ValueError(f"task must be 'generator' or 'features', got {task!r}.")
        if contributors is not None and task != "generator":
            raise ValueError("contributors (a coalition) only applies to task='generator'.")
        self.planting = planting if isinstance(planting, DigitsPlanting) else DigitsPlanting.from_config(planting or {})
        self.task = task
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.contributors = check_coalition(contributors, self.planting.contributor_ids)
        self.save_hyperparameters(
            {"planting": self.planting.to_config(), "task": task, "seed": seed, "contributors": self.contributors}
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the planted split (cheap: 1,797 small images)."""
        data = DigitsContributors.build(self.planting)
        self.data = data
        if self.task == "generator":
            keep = np.ones(len(data.images), dtype=bool)
            if self.contributors is not None:
                members = [data.contributor_ids.index(c) for c in self.contributors]
                keep = np.isin(data.contributor_index, members)
            images = torch.from_numpy(data.images[keep, None] * 2.0 - 1.0)
            self.train_set = TensorDataset(images, torch.from_numpy(data.labels[keep]))
            self.val_set = None
        else:
            self.train_set = self._variants(data.clean_images, data.digits, [self.seed, 1])
            self.val_set = self._variants(data.reference_images, data.reference_digits, [self.seed, 2])

    @staticmethod
    def _variants(images: np.ndarray, digits: np.ndarray, seed: list[int]) -> TensorDataset:
        """As-is, marked and distorted copies of ``images`` (see the class docstring)."""
        rng = np.random.default_rng(seed)
        n = len(images)
        marked = images.copy()
        for i in range(n):
            size, corner = int(rng.integers(1, 4)), CORNERS[int(rng.integers(0, 4))]
            marked[i : i + 1] = add_marker(marked[i : i + 1], size, corner)
        distorted = images.copy()
        ranges = {"invert": (0.5, 1.0), "noise": (0.2, 0.5), "blur": (0.8, 1.5)}
        for i in range(n):
            kind = ("invert", "noise", "blur")[int(rng.integers(0, 3))]
            distorted[i : i + 1] = corrupt(images[i : i + 1], kind, float(rng.uniform(*ranges[kind])), rng)
        out = np.concatenate([images, marked, distorted])
        flag = np.repeat(np.array([0.0, 1.0, 0.0], dtype=np.float32), n)
        targets = np.concatenate([digits, digits, np.full(n, DEGRADED_CLASS, dtype=np.int64)])
        return TensorDataset(torch.from_numpy(out[:, None]), torch.from_numpy(targets), torch.from_numpy(flag))

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        """The held-out clean split (features task only)."""
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=len(self.val_set), num_workers=self.num_workers)
