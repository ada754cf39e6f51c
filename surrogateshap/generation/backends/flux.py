"""FLUX.1 (+ LoRA) as a caption-conditioned generation backend (distilled guidance)."""

from __future__ import annotations

import os
from typing import Any

from diffusers import FluxPipeline

from .diffusers_t2i import DiffusersTextToImage


class Flux(DiffusersTextToImage):
    """``FluxPipeline`` loaded from a local folder, optionally with LoRA weights.

    ``guidance_scale`` is FLUX.1-dev's distilled guidance (fed to the transformer's guidance
    embedding), not classifier-free guidance: one transformer pass per step.

    Parameters
    ----------
    model_path : local folder written by ``FluxPipeline.save_pretrained`` (config key ``model_path``);
        or ``pipeline``, a ``FluxPipeline`` in memory (:meth:`from_pipeline`).
    lora_path : LoRA weights file (or a folder holding ``pytorch_lora_weights.safetensors``); None
        gives the base model.
    resolution : image height and width in pixels (a multiple of 16 for FLUX.1); None uses the
        pipeline's default.
    lora_scale, base_model, prompt_template, torch_dtype, batch_invariant : as for
        :class:`~surrogateshap.generation.backends.stable_diffusion.StableDiffusion`.
    max_sequence_length : T5 prompt length in tokens (512 for FLUX.1-dev).
    """

    pipeline_class = FluxPipeline

    def __init__(
        self, model_path: str | os.PathLike | None = None, max_sequence_length: int = 512, **kwargs: Any
    ) -> None:
        super().__init__(model_path, **kwargs)
        self.max_sequence_length = int(max_sequence_length)

    def _pipeline_kwargs(self, guidance_scale: float) -> dict[str, Any]:
        return {"guidance_scale": guidance_scale, "max_sequence_length": self.max_sequence_length}
