"""Class-conditional DDPM with classifier-free guidance (diffusers ``UNet2DModel`` + DDIM/DDPM).

The UNet has ``num_class_embeds = num_labels + 1`` class embeddings: labels ``0..num_labels-1``
and the null (unconditional) label ``num_labels``. Class 0 is never reused as the null label.
Guidance: ``eps = eps_null + w (eps_cond - eps_null)``.

Saved layout (``save_pretrained`` / ``from_pretrained``, diffusers conventions)::

    <path>/unet/config.json, diffusion_pytorch_model.safetensors
    <path>/scheduler/scheduler_config.json
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from .base import Condition, GenerationBackend

__all__ = ["ClassConditionalDDPM"]

_SCHEDULERS = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}


class ClassConditionalDDPM(GenerationBackend):
    """A class-conditional UNet sampled with classifier-free guidance in a hand-written scheduler loop.

    Parameters
    ----------
    unet : a ``UNet2DModel`` with ``num_class_embeds = num_labels + 1`` (last index = null label).
    scheduler : a ``DDIMScheduler`` or ``DDPMScheduler``, or ``"ddim"`` / ``"ddpm"`` for one with
        diffusers' default configuration (1000 training steps).
    batch_invariant : evaluate the UNet one sample at a time (its conditional and null pass
        together), so a sample is bit-identical whatever batch it falls in. CPU (oneDNN/MKL) and
        GPU convolution and GEMM kernels are chosen per batch shape and round differently in the
        last bits (measured: up to ~1e-6 per UNet call on CPU), so one batched call over the whole
        batch is not batch-size independent. ``False`` runs one batched call (faster on GPUs) and
        gives batch-size independence up to that rounding only.

    Images come out as float32 ``(B, 3, H, W)`` in [0, 1] on the module's device (1-channel
    UNets are repeated to 3 channels). Device and dtype follow the UNet's parameters.
    """

    condition_kind = "label"

    def __init__(
        self,
        unet: UNet2DModel,
        scheduler: DDIMScheduler | DDPMScheduler | Literal["ddim", "ddpm"] = "ddim",
        *,
        batch_invariant: bool = True,
    ) -> None:
        super().__init__()
        n_embeds = getattr(unet.config, "num_class_embeds", None)
        if not n_embeds or n_embeds < 2:
            raise ValueError(
                "the UNet must be class-conditional with num_class_embeds = num_labels + 1 (the last index is "
                f"the null label for classifier-free guidance); it has num_class_embeds={n_embeds!r}."
            )
        if unet.config.out_channels != unet.config.in_channels:
            raise ValueError(
                f"the UNet predicts {unet.config.out_channels} channels for {unet.config.in_channels} input "
                "channels; learned-variance outputs are not supported (out_channels must equal in_channels)."
            )
        if isinstance(scheduler, str):
            if scheduler not in _SCHEDULERS:
                raise ValueError(f"scheduler must be 'ddim', 'ddpm' or a scheduler instance, got {scheduler!r}.")
            scheduler = _SCHEDULERS[scheduler]()
        self.unet = unet
        self.scheduler = scheduler
        self.batch_invariant = bool(batch_invariant)

    # configuration ------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """The number of real class labels (``num_class_embeds - 1``)."""
        return int(self.unet.config.num_class_embeds) - 1

    @property
    def null_label(self) -> int:
        """The index of the null (unconditional) class embedding: ``num_labels``."""
        return self.num_labels

    @property
    def image_size(self) -> int:
        """Height and width of the generated images."""
        size = self.unet.config.sample_size
        return int(size if isinstance(size, int) else size[0])

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        scheduler: Literal["ddim", "ddpm"] | None = None,
        batch_invariant: bool = True,
    ) -> ClassConditionalDDPM:
        """Load ``path/unet`` and ``path/scheduler`` written by :meth:`save_pretrained` (local files only).

        ``scheduler`` overrides the saved scheduler class (its configuration is kept): ``"ddim"``
        or ``"ddpm"``; by default the saved class is used.
        """
        root = Path(path)
        unet_dir, sched_dir = root / "unet", root / "scheduler"
        for needed, what in (
            (unet_dir / "config.json", "the UNet config (UNet2DModel.save_pretrained(<path>/unet))"),
            (sched_dir / "scheduler_config.json", "the scheduler config (scheduler.save_pretrained(<path>/scheduler))"),
        ):
            if not needed.is_file():
                raise FileNotFoundError(
                    f"class-conditional DDPM checkpoint incomplete: {needed} is missing; it should hold {what}. "
                    f"Point the model path at a folder written by ClassConditionalDDPM.save_pretrained."
                )
        unet = UNet2DModel.from_pretrained(str(root), subfolder="unet", local_files_only=True)
        if scheduler is None:
            saved = DDIMScheduler.load_config(str(root), subfolder="scheduler", local_files_only=True)
            kind = "ddpm" if saved.get("_class_name") == "DDPMScheduler" else "ddim"
        else:
            if scheduler not in _SCHEDULERS:
                raise ValueError(f"scheduler must be 'ddim', 'ddpm' or None, got {scheduler!r}.")
            kind = scheduler
        sched = _SCHEDULERS[kind].from_pretrained(str(root), subfolder="scheduler", local_files_only=True)
        return cls(unet.eval(), sched, batch_invariant=batch_invariant)

    @classmethod
    def untrained(
        cls,
        path: str | Path,
        *,
        init_seed: int = 0,
        scheduler: Literal["ddim", "ddpm"] | None = None,
        batch_invariant: bool = True,
    ) -> ClassConditionalDDPM:
        """The checkpoint's architecture and scheduler with freshly initialised weights (seeded).

        This is the model trained on no data: its samples measure ``v_empty`` of a model trained
        from scratch the same way the trained model's samples measure every other coalition.
        """
        trained = cls.from_pretrained(path, scheduler=scheduler, batch_invariant=batch_invariant)
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(int(init_seed))
            unet = UNet2DModel.from_config(trained.unet.config)
        finally:
            torch.random.set_rng_state(state)
        return cls(unet.eval(), trained.scheduler, batch_invariant=batch_invariant)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``path/unet`` and ``path/scheduler`` (the layout :meth:`from_pretrained` reads)."""
        root = Path(path)
        self.unet.save_pretrained(str(root / "unet"))
        self.scheduler.save_pretrained(str(root / "scheduler"))
        return root

    # sampling -----------------------------------------------------------------------
    def _labels(self, conditions: Sequence[Condition]) -> list[int]:
        labels = []
        for cond in conditions:
            if isinstance(cond, bool) or not isinstance(cond, int) or not 0 <= cond < self.num_labels:
                raise ValueError(
                    f"class-conditional DDPM conditions must be integer labels in [0, {self.num_labels}) "
                    f"(index {self.null_label} is the null label), got {cond!r}."
                )
            labels.append(int(cond))
        return labels

    def _eps(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Guided noise prediction for a batch: one UNet call on [x; x] with [labels; null]."""
        if guidance_scale == 1.0:  # eps_null + 1 (eps_cond - eps_null) = eps_cond: skip the null pass
            return self.unet(x, t, class_labels=labels).sample
        null = torch.full_like(labels, self.null_label)
        both = self.unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, null])).sample
        eps_cond, eps_null = both.chunk(2)
        return eps_null + guidance_scale * (eps_cond - eps_null)

    @torch.no_grad()
    def generate(
        self,
        conditions: Sequence[Condition],
        generators: Sequence[torch.Generator],
        guidance_scale: float,
        num_inference_steps: int,
    ) -> torch.Tensor:
        """Images for class labels ``conditions``; ``generators[b]`` drives all randomness of sample b."""
        labels = self._labels(conditions)
        if len(generators) != len(labels):
            raise ValueError(f"need one generator per condition, got {len(generators)} for {len(labels)}.")
        if not labels:
            size = self.image_size
            return torch.zeros(0, 3, size, size, device=self.unet.device)
        param = next(self.unet.parameters())
        device, dtype = param.device, param.dtype
        cfg = self.unet.config
        size = self.image_size
        shape = (1, cfg.in_channels, size, size)
        # initial noise: float32 on CPU from each sample's own generator, then to the model's device/dtype
        x = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators]).to(device, dtype)
        label_t = torch.tensor(labels, dtype=torch.long, device=device)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        gens = list(generators)
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(x, t)
            if self.batch_invariant:
                eps = torch.cat(
                    [self._eps(model_in[b : b + 1], t, label_t[b : b + 1], guidance_scale) for b in range(len(labels))]
                )
            else:
                eps = self._eps(model_in, t, label_t, guidance_scale)
            # stochastic steps (DDPM, DDIM with eta > 0) draw noise per sample from its generator list entry
            x = self.scheduler.step(eps, t, x, generator=gens if len(gens) > 1 else gens[0]).prev_sample
        images = (x.float() / 2 + 0.5).clamp(0, 1)
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        return images
