"""Generation backends: class-conditional DDPM, Stable Diffusion (+ LoRA), FLUX (+ LoRA).

The backends import diffusers, which is slow to import, so they are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Condition, GenerationBackend

_LAZY = {
    "ClassConditionalDDPM": ".ddpm",
    "StableDiffusion": ".stable_diffusion",
    "Flux": ".flux",
}

__all__ = ["ClassConditionalDDPM", "Condition", "Flux", "GenerationBackend", "StableDiffusion"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
