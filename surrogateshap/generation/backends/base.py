"""The interface every generation backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

Condition = int | str


class GenerationBackend(nn.Module):
    """A conditional image generator driven one sample at a time by its own random generator.

    Subclasses hold the model as ``nn.Module`` children, so the Lightning Trainer moves them
    to its device and precision. ``condition_kind`` says what the plan must provide:
    ``"label"`` (an int class index) or ``"caption"`` (a prompt string).
    """

    condition_kind: Literal["label", "caption"]

    def generate(
        self,
        conditions: Sequence[Condition],
        generators: Sequence[torch.Generator],
        guidance_scale: float,
        num_inference_steps: int,
    ) -> torch.Tensor:
        """Images for ``conditions`` as a float tensor (B, 3, H, W) in [0, 1].

        ``generators[b]`` (a CPU ``torch.Generator``) is the only source of randomness for
        sample ``b``: the same condition and generator state give the same image whatever
        else is in the batch.
        """
        raise NotImplementedError
