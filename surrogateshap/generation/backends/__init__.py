"""Generation backends: class-conditional DDPM, Stable Diffusion (+ LoRA), FLUX (+ LoRA).

The backends import diffusers, which is slow to import, so they are loaded on first use.
"""

from __future__ import annotations

from ..._lazy import lazy_exports
from .base import Condition, GenerationBackend

_LAZY = {
    "ClassConditionalDDPM": ".ddpm",
    "StableDiffusion": ".stable_diffusion",
    "Flux": ".flux",
}

__all__ = ["ClassConditionalDDPM", "Condition", "Flux", "GenerationBackend", "StableDiffusion"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
