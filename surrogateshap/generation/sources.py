"""Source images of paired scorers: the training image behind each generated sample, by example id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageFolderSource"]


class ImageFolderSource:
    """Training images read from a folder by example id: ``ids -> (B, 3, H, W)`` float32 in [0, 1].

    The generator's ``source_images`` for paired scorers (e.g. paired LPIPS): sample ``b``'s
    image is ``root / pattern.format(example_id=ids[b])``, opened with PIL and converted to RGB.

    Parameters
    ----------
    root : the folder holding one image per training example.
    pattern : file name (relative to ``root``) of an example's image; ``{example_id}`` is replaced
        by the example id, e.g. ``"{example_id}.png"`` or ``"images/{example_id}.jpg"``.
    size : resize every image to ``size`` x ``size`` (an int) or ``(height, width)`` (PIL bicubic)
        so a batch stacks; ``None`` keeps the files' size (they must then all have the same size).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        pattern: str = "{example_id}.png",
        size: int | Sequence[int] | None = None,
    ) -> None:
        if "{example_id}" not in pattern:
            raise ValueError(f"pattern must contain '{{example_id}}', got {pattern!r}.")
        self.root = Path(root).expanduser()
        self.pattern = pattern
        if size is None:
            self.size = None
        elif isinstance(size, int):
            self.size = (int(size), int(size))
        else:
            self.size = tuple(int(s) for s in size)
            if len(self.size) != 2:
                raise ValueError(f"size must be an int or (height, width), got {size!r}.")
        if self.size is not None and min(self.size) < 1:
            raise ValueError(f"size must be positive, got {size!r}.")

    def path(self, example_id: str) -> Path:
        """The file of ``example_id``."""
        return self.root / self.pattern.format(example_id=example_id)

    def load(self, example_id: str) -> torch.Tensor:
        """One image ``(3, H, W)`` float32 in [0, 1]."""
        from PIL import Image

        path = self.path(example_id)
        if not path.is_file():
            raise FileNotFoundError(
                f"source image of training example {example_id!r} not found: '{path}' (ImageFolderSource root "
                f"'{self.root}', pattern {self.pattern!r}). Put one image per training example there, named by "
                "its example_id as the pattern says."
            )
        with Image.open(path) as img:
            img = img.convert("RGB")
            if self.size is not None and img.size != (self.size[1], self.size[0]):
                img = img.resize((self.size[1], self.size[0]), Image.Resampling.BICUBIC)
            pixels = np.asarray(img, dtype=np.uint8)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0

    def __call__(self, example_ids: Sequence[str]) -> torch.Tensor:
        """Images of ``example_ids`` stacked ``(B, 3, H, W)`` float32 in [0, 1]."""
        images = [self.load(str(e)) for e in example_ids]
        if not images:
            h, w = self.size or (0, 0)
            return torch.zeros(0, 3, h, w)
        shapes = {tuple(x.shape) for x in images}
        if len(shapes) > 1:
            raise ValueError(
                f"source images of {list(example_ids)[:5]} have different sizes {sorted(shapes)}: give "
                "ImageFolderSource a `size` to resize them to."
            )
        return torch.stack(images)

    def __repr__(self) -> str:
        return f"ImageFolderSource(root='{self.root}', pattern={self.pattern!r}, size={self.size})"
