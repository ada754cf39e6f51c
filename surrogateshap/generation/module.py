"""Subset-conditioned generation as a Lightning predict loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from ..bank import ContributorBank
from ..checks import check_int
from .backends.base import GenerationBackend
from .plan import SamplingPlan, bank_config, collate_plan_rows

__all__ = ["SubsetConditionedGenerator", "merge_predictions"]

Extractor = Callable[[torch.Tensor], torch.Tensor]
#: ``scorer(generated, source) -> (B,)``: compares each generated image with its source training image
PairedScorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``source_images(example_ids) -> (B, 3, H, W)`` float in [0, 1], e.g. :class:`.sources.ImageFolderSource`
SourceImages = Callable[[list[str]], torch.Tensor]


def _to_numpy(value: Any, name: str, n: int, what: str = "extractor") -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.is_floating_point():
            value = value.float()  # bf16/fp16 outputs of mixed precision are stored as float32
        value = value.cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"{what} {name!r} must return one row per image ({n}), got shape {arr.shape}.")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return arr


def match_module(fn: Extractor, images: torch.Tensor) -> torch.Tensor:
    """Images on the device and in the float dtype of an ``nn.Module`` extractor (e.g. under bf16-true);
    other extractors get them unchanged."""
    if isinstance(fn, nn.Module):
        for tensor in (*fn.parameters(), *fn.buffers()):
            if tensor.is_floating_point():
                return images.to(device=tensor.device, dtype=tensor.dtype)
    return images


def merge_predictions(predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``predict_step`` outputs of several batches as one (features, contributors, sample indices, seeds).

    >>> batch = {"features": {"s": np.array([0.5])}, "contributor": ["a"], "sample_index": np.array([0]),
    ...          "seed": np.array([7])}
    >>> merge_predictions([batch, batch])["features"]["s"]
    array([0.5, 0.5])
    """
    return {
        "features": {k: np.concatenate([p["features"][k] for p in predictions]) for k in predictions[0]["features"]},
        "contributor": [c for p in predictions for c in p["contributor"]],
        "sample_index": np.concatenate([p["sample_index"] for p in predictions]),
        "seed": np.concatenate([p["seed"] for p in predictions]),
    }


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
    batch_invariant_extractors : run each extractor (and paired scorer) on one image at a time, so
        features do not depend on which batch a sample falls in (convolution/GEMM kernels round
        differently for different batch shapes). ``False`` runs one batched call per extractor.
    paired_scorers : name -> callable ``(generated, source) -> (B,)`` comparing each generated
        image with the training image whose caption produced its prompt (e.g. paired LPIPS); both
        are ``(B, 3, H, W)`` in [0, 1]. Stored in the features under ``name``, like an extractor's
        output (names must not clash with the extractors'). ``nn.Module`` scorers are registered
        as children. Needs plan rows with ``example_id`` (caption plans) and ``source_images``.
    source_images : callable ``example_ids -> (B, 3, H, W)`` float in [0, 1], the source training
        images of a batch (e.g. :class:`~surrogateshap.generation.sources.ImageFolderSource`).

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
        paired_scorers: Mapping[str, nn.Module | PairedScorer] | None = None,
        source_images: SourceImages | None = None,
    ) -> None:
        super().__init__()
        paired_scorers = dict(paired_scorers or {})
        if not extractors and not paired_scorers:
            raise ValueError("give at least one extractor: the bank stores per-sample features, not images.")
        for name, fn in (extractors or {}).items():
            if not callable(fn):
                raise ValueError(f"extractor {name!r} is not callable.")
        for name, fn in paired_scorers.items():
            if not callable(fn):
                raise ValueError(f"paired scorer {name!r} is not callable.")
        clash = sorted(set(extractors or {}) & set(paired_scorers))
        if clash:
            raise ValueError(f"names {clash} are both extractors and paired scorers: each feature needs its own name.")
        if paired_scorers and source_images is None:
            raise ValueError(
                f"paired scorers {sorted(paired_scorers)} compare each generated image with its source training "
                "image: give `source_images` (example ids -> images), e.g. "
                "surrogateshap.generation.sources.ImageFolderSource(root)."
            )
        if source_images is not None and not callable(source_images):
            raise ValueError(f"source_images must be callable (example ids -> images), got {type(source_images)}.")
        self.backend = backend
        self._extractors = dict(extractors or {})
        self.extractor_modules = nn.ModuleDict({k: v for k, v in self._extractors.items() if isinstance(v, nn.Module)})
        self._paired_scorers = paired_scorers
        self.paired_scorer_modules = nn.ModuleDict(
            {k: v for k, v in paired_scorers.items() if isinstance(v, nn.Module)}
        )
        self.source_images = source_images
        self.guidance_scale = float(guidance_scale)
        self.num_inference_steps = int(num_inference_steps)
        self.save_images_dir = None if save_images_dir is None else Path(save_images_dir)
        self.batch_invariant_extractors = bool(batch_invariant_extractors)
        # a resumed DDP run may leave a rank without rows (see RankShardSampler); predict has no collectives
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.save_hyperparameters(ignore=["backend", "extractors", "paired_scorers", "source_images"])

    @property
    def extractors(self) -> dict[str, Any]:
        """name -> feature extractor of the bank arrays (registered modules as moved by the Trainer)."""
        return {name: self.extractor_modules[name] if name in self.extractor_modules else fn
                for name, fn in self._extractors.items()}

    def feature_sources(self) -> dict[str, str]:
        """Each bank array this module writes -> the class of the extractor or paired scorer making it."""
        return {name: type(fn).__name__ for name, fn in sorted({**self._extractors, **self._paired_scorers}.items())}

    def generation_config(self) -> dict[str, Any]:
        """How this module generates (backend class, guidance, steps, each feature's extractor), for the bank's
        config (:func:`~surrogateshap.generation.plan.bank_config`)."""
        return {
            "backend": type(self.backend).__name__,
            "guidance_scale": float(self.guidance_scale),
            "num_inference_steps": int(self.num_inference_steps),
            "features": self.feature_sources(),
        }

    @torch.no_grad()
    def sample(self, plan: SamplingPlan, batch_size: int = 16) -> ContributorBank:
        """The plan's samples as an in-memory bank, generated here without a Trainer (what the fit-mode
        monitor attributes every k epochs). Batches are fixed chunks of the plan, so the bank does not
        depend on how it was split; the caller sets eval mode and the device."""
        check_int(batch_size, "batch_size", 1)
        plan.check_backend(self.backend)
        outputs = []
        for k, start in enumerate(range(0, len(plan), batch_size)):
            rows = [plan[i] for i in range(start, min(start + batch_size, len(plan)))]
            outputs.append(self.predict_step(collate_plan_rows(rows), k))
        if not outputs:
            raise ValueError("the sampling plan has no rows: give samples_per_contributor >= 1.")
        rows = merge_predictions(outputs)
        return ContributorBank(rows["features"], rows["contributor"], plan.n_examples,
                               sample_index=rows["sample_index"], seed=rows["seed"],
                               config=bank_config(plan, self.generation_config()))

    def _run_feature(self, name: str, what: str, *inputs: torch.Tensor) -> np.ndarray:
        """Run extractor or paired scorer ``name`` on ``inputs`` (one image at a time when batch invariant)."""
        # modules registered as children (moved by the Trainer) take precedence over the raw mappings
        if what == "extractor":
            fn = self.extractors[name]
        else:
            fn = self.paired_scorer_modules[name] if name in self.paired_scorer_modules else self._paired_scorers[name]
        inputs = tuple(match_module(fn, x) for x in inputs)
        n = inputs[0].shape[0]
        if self.batch_invariant_extractors and n > 1:
            value = torch.cat([torch.as_tensor(fn(*(x[b : b + 1] for x in inputs))) for b in range(n)])
        else:
            value = fn(*inputs)
        return _to_numpy(value, name, n, what)

    def forward(self, conditions: list, seeds: list[int]) -> torch.Tensor:
        """Images for ``conditions``, sample b generated from a fresh CPU generator seeded ``seeds[b]``."""
        generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        return self.backend.generate(list(conditions), generators, self.guidance_scale, self.num_inference_steps)

    def extract(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Every extractor's per-sample output as numpy (floats as float32)."""
        return {name: self._run_feature(name, "extractor", images) for name in self._extractors}

    def score_pairs(self, images: torch.Tensor, example_ids: list[Any]) -> dict[str, np.ndarray]:
        """Every paired scorer's per-sample ``scorer(images, source images of example_ids)`` as numpy."""
        if not self._paired_scorers:
            return {}
        n = images.shape[0]
        if len(example_ids) != n or any(e is None for e in example_ids):
            raise ValueError(
                f"paired scorers {sorted(self._paired_scorers)} need each plan row's source example (`example_id`), "
                "but this batch's rows have none: paired scorers work with caption plans, whose rows carry the "
                "training example whose caption was drawn."
            )
        if self.source_images is None:  # pragma: no cover - refused in __init__
            raise ValueError("paired scorers need `source_images` (example ids -> images).")
        sources = torch.as_tensor(self.source_images([str(e) for e in example_ids]))
        if sources.ndim != 4 or sources.shape[0] != n:
            raise ValueError(
                f"source_images must return (B, 3, H, W) images for the {n} example ids, got shape "
                f"{tuple(sources.shape)}."
            )
        sources = sources.to(images.device)
        return {name: self._run_feature(name, "paired scorer", images, sources) for name in self._paired_scorers}

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
        if self._paired_scorers:
            example_ids = list(batch.get("example_id") or [])
            features.update(self.score_pairs(images, example_ids))
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
