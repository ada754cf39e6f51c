"""What the embedded settings' training share: AdamW with a cosine decay over the whole run, training a model
with a shipped LightningCLI recipe into a folder of one's choosing (:func:`fit_recipe`: retraining, another
planting), and reading back which planting a model was trained on (the ``training.json`` that ``SavePretrained``
writes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

__all__ = ["cosine_adamw", "fit_recipe", "trained_planting"]


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


def fit_recipe(
    recipe_path: str | Path,
    out_dir: str | Path,
    *,
    data_args: Mapping[str, Any] | None = None,
    model_args: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> Path:
    """Train with a shipped LightningCLI recipe (``configs/<model>.yaml``) and write the model to ``out_dir``.

    The recipe's trainer, model and data sections are used as they are, except: the model is written to
    ``out_dir`` by :class:`~surrogateshap.callbacks.SavePretrained` (atomically, with ``training.json``), logs go
    to ``out_dir.parent/logs``, ``data_args`` / ``model_args`` replace those ``init_args`` keys (a planting, a
    coalition's ``contributors``), ``max_steps`` the trainer's steps and ``seed`` the recipe's
    ``seed_everything`` (weight initialisation, batch order and diffusion noise). Returns ``out_dir``.

    ``fit_recipe(recipe_config_path(), "out/ddpm", data_args={"contributors": ["digit0_a"]})`` retrains the
    digits DDPM on one contributor's data with the shipped recipe.
    """
    import yaml

    from ..config import instantiate

    recipe = yaml.safe_load(Path(recipe_path).read_text(encoding="utf-8"))
    out = Path(out_dir)
    logs = str(out.parent / "logs")
    trainer_cfg = {
        **recipe["trainer"], "default_root_dir": logs, "enable_progress_bar": progress,
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": logs}},
        "callbacks": [{"class_path": "surrogateshap.callbacks.SavePretrained", "init_args": {"dirpath": str(out)}}],
    }
    if max_steps is not None:
        trainer_cfg["max_steps"] = int(max_steps)
    sections = {}
    for name, given in (("model", model_args), ("data", data_args)):
        section = dict(recipe[name])
        section["init_args"] = {**section.get("init_args", {}), **dict(given or {})}
        sections[name] = section
    pl.seed_everything(int(recipe.get("seed_everything", 0)) if seed is None else int(seed), verbose=False)
    model = instantiate(sections["model"], "recipe.model")
    datamodule = instantiate(sections["data"], "recipe.data")
    trainer = pl.Trainer(**instantiate(trainer_cfg, "recipe.trainer"))
    trainer.fit(model, datamodule=datamodule)
    return out
