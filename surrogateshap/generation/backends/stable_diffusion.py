"""Stable Diffusion (+ LoRA) as a caption-conditioned generation backend."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from diffusers import StableDiffusionPipeline

from .diffusers_t2i import DiffusersTextToImage


class StableDiffusion(DiffusersTextToImage):
    """``StableDiffusionPipeline`` loaded from a local folder, optionally with LoRA weights.

    Parameters
    ----------
    model_path : local folder written by ``StableDiffusionPipeline.save_pretrained`` (config key
        ``model_path``); the safety checker is never loaded. Or, instead, ``pipeline``:
    pipeline : a ``StableDiffusionPipeline`` already in memory (:meth:`from_pipeline`), e.g. around the
        UNet being fine-tuned; its modules are used as they are (not copied, not frozen).
    lora_path : LoRA weights file (or a folder holding ``pytorch_lora_weights.safetensors``) from
        the fine-tuning run (config key ``lora_path``); None gives the base model.
    resolution : image height and width in pixels; None uses the UNet's native size.
    lora_scale : strength of the LoRA adapter (1.0 as trained).
    base_model : ignore ``lora_path`` and generate with the base model (the bank for ``v_empty``).
    prompt_template : ``str.format`` pattern turning a plan caption into the prompt (``"{}"``: as is).
    torch_dtype : dtype to load the weights in (``"float16"``...); the Trainer's precision may cast later.
    batch_invariant : one pipeline call per sample, so images are bit-identical whatever the batch
        (``False``: one batched call, faster on GPUs, equal up to last-bit rounding).
    negative_prompt : optional negative prompt for classifier-free guidance.
    """

    pipeline_class = StableDiffusionPipeline
    load_kwargs: ClassVar[dict[str, Any]] = {
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }

    def __init__(
        self, model_path: str | os.PathLike | None = None, negative_prompt: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model_path, **kwargs)
        self.negative_prompt = negative_prompt

    def _pipeline_kwargs(self, guidance_scale: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"guidance_scale": guidance_scale}
        if self.negative_prompt is not None:
            kwargs["negative_prompt"] = self.negative_prompt
        return kwargs
