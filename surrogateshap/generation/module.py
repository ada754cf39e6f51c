"""Subset-conditioned generation as a Lightning predict loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from .backends.base import GenerationBackend

__all__ = ["SubsetConditionedGenerator"]

Extractor = Callable[[torch.Tensor], torch.Tensor]


def _to_numpy(value: Any, name: str, n: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.is_floating_point():
            value = value.float()  # bf16/fp16 outputs of mixed precision are stored as float32
        value = value.cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"extractor {name!r} must return one row per image ({n}), got shape {arr.shape}.")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return arr


def _match_module(fn: Extractor, images: torch.Tensor) -> torch.Tensor:
    """Images on the device and in the float dtype of an ``nn.Module`` extractor (e.g. under bf16-true)."""
    if isinstance(fn, nn.Module):
        for tensor in (*fn.parameters(), *fn.buffers()):
            if tensor.is_floating_point():
                return images.to(device=tensor.device, dtype=tensor.dtype)
    return images


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "contributor"


class SubsetConditionedGenerator(pl.LightningModule):
    """Generate a batch of plan rows and return per-sample features (``trainer.predict``).

    Parameters
    ----------
    backend : the conditional generator (its modules follow the Trainer's device and precision).
    extractors : name -> callable ``images (B, 3, H, W) in [0, 1] -> (B, ...)`` (feature
        extractors, scorers). ``nn.Module`` extractors are registered as children.
    guidance_scale, num_inference_steps : passed to ``backend.generate``.
    save_images_dir : when set, every image is also written there as
        ``{contributor}_{sample_index:06d}.png``; otherwise no image is kept.
    batch_invariant_extractors : run each extractor on one image at a time, so features do not
        depend on which batch a sample falls in (convolution/GEMM kernels round differently for
        different batch shapes). ``False`` runs one batched call per extractor.

    ``predict_step`` returns ``{"features": {name: (B, ...) array}, "contributor": [ids],
    "sample_index": (B,) int64, "seed": (B,) int64}`` (numpy), ready for ``ShardWriter.append``.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        extractors: Mapping[str, nn.Module | Extractor],
        guidance_scale: float = 1.0,
        num_inference_steps: int = 50,
        save_images_dir: str | Path | None = None,
        *,
        batch_invariant_extractors: bool = True,
    ) -> None:
        super().__init__()
        if not extractors:
            raise ValueError("give at least one extractor: the bank stores per-sample features, not images.")
        for name, fn in extractors.items():
            if not callable(fn):
                raise ValueError(f"extractor {name!r} is not callable.")
        self.backend = backend
        self.extractor_modules = nn.ModuleDict({k: v for k, v in extractors.items() if isinstance(v, nn.Module)})
        self._extractors = dict(extractors)
        self.guidance_scale = float(guidance_scale)
        self.num_inference_steps = int(num_inference_steps)
        self.save_images_dir = None if save_images_dir is None else Path(save_images_dir)
        self.batch_invariant_extractors = bool(batch_invariant_extractors)
        # a resumed DDP run may leave a rank without rows (see RankShardSampler); predict has no collectives
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.save_hyperparameters(ignore=["backend", "extractors"])

    def _extractor(self, name: str) -> Extractor:
        # modules registered as children (moved by the Trainer) take precedence over the raw mapping
        return self.extractor_modules[name] if name in self.extractor_modules else self._extractors[name]

    def forward(self, conditions: list, seeds: list[int]) -> torch.Tensor:
        """Images for ``conditions``, sample b generated from a fresh CPU generator seeded ``seeds[b]``."""
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        return self.backend.generate(list(conditions), generators, self.guidance_scale, self.num_inference_steps)

    def extract(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Every extractor's per-sample output as numpy (floats as float32)."""
        n = images.shape[0]
        out = {}
        for name in self._extractors:
            fn = self._extractor(name)
            images_in = _match_module(fn, images)
            if self.batch_invariant_extractors and n > 1:
                value = torch.cat([torch.as_tensor(fn(images_in[b : b + 1])) for b in range(n)])
            else:
                value = fn(images_in)
            out[name] = _to_numpy(value, name, n)
        return out

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int = 0, dataloader_idx: int = 0) -> dict[str, Any]:
        """Generate the batch's plan rows and return their features (no images unless saved to disk)."""
        seeds = [int(s) for s in torch.as_tensor(batch["seed"]).tolist()]
        images = self(batch["condition"], seeds)
        if images.ndim != 4 or images.shape[0] != len(seeds):
            raise ValueError(
                f"{type(self.backend).__name__}.generate must return (B, 3, H, W) images for the {len(seeds)} "
                f"conditions, got shape {tuple(images.shape)}."
            )
        features = self.extract(images)
        sample_index = torch.as_tensor(batch["sample_index"]).cpu().numpy().astype(np.int64)
        contributors = [str(c) for c in batch["contributor"]]
        if self.save_images_dir is not None:
            self._save_images(images, contributors, sample_index)
        return {
            "features": features,
            "contributor": contributors,
            "sample_index": sample_index,
            "seed": np.asarray(seeds, dtype=np.int64),
        }

    def _save_images(self, images: torch.Tensor, contributors: list[str], sample_index: np.ndarray) -> None:
        from PIL import Image

        self.save_images_dir.mkdir(parents=True, exist_ok=True)
        pixels = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for img, cid, j in zip(pixels, contributors, sample_index.tolist()):
            Image.fromarray(img).save(self.save_images_dir / f"{_safe_name(cid)}_{j:06d}.png")
