"""What the embedded settings' training share: AdamW with a cosine decay over the whole run, and reading back
which planting a shipped model was trained on (the ``training.json`` that ``SavePretrained`` writes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

__all__ = ["cosine_adamw", "trained_planting"]


def cosine_adamw(module: pl.LightningModule, parameters: Iterable[torch.nn.Parameter], learning_rate: float,
                 weight_decay: float = 0.0) -> dict:
    """``configure_optimizers``' answer: AdamW, its rate decayed with a cosine to 0 over the Trainer's total steps.

    In a LightningModule (the Trainer must be attached, as it is when Lightning calls the hook)::

        def configure_optimizers(self):
            return cosine_adamw(self, self.unet.parameters(), self.hparams.learning_rate)
    """
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    total = max(1, int(module.trainer.estimated_stepping_batches))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def trained_planting(model_dir: str | Path, normalise: Callable[[Any], Any]) -> dict[str, Any] | None:
    """The planting a model folder was trained on, from its ``training.json`` (None: no record), passed through
    ``normalise`` (e.g. ``lambda c: DigitsPlanting.from_config(c).to_config()``) to compare with a config's."""
    record = Path(model_dir) / "training.json"
    if not record.is_file():
        return None
    planting = (json.loads(record.read_text(encoding="utf-8")).get("data") or {}).get("planting")
    return None if planting is None else normalise(planting)
