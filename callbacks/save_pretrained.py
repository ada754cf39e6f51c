"""A callback that writes the trained model in its ``from_pretrained`` format when fitting ends."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl

__all__ = ["SavePretrained"]


class SavePretrained(pl.Callback):
    """On ``on_train_end`` call ``pl_module.save_pretrained`` into ``dirpath`` and record how it was made.

    The folder is written next to ``dirpath`` first and renamed into place, so an interrupted
    run never leaves a half-written model. ``training.json`` records the seed, steps, epochs,
    wall-clock seconds, the last logged metrics and the data module's hyperparameters (e.g.
    the planting).

    >>> from surrogateshap.examples.digits import DiffusionTraining
    >>> callback = SavePretrained("models/ddpm")  # pl.Trainer(callbacks=[callback]).fit(DiffusionTraining(...), data)
    >>> callback.dirpath.as_posix()
    'models/ddpm'
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self._start = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock."""
        self._start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the model and ``training.json`` (rank 0 only)."""
        if not trainer.is_global_zero:
            return
        self.dirpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.dirpath.name}.", dir=self.dirpath.parent))
        try:
            pl_module.save_pretrained(tmp)
            _apply_umask(tmp)
            datamodule = trainer.datamodule
            record = {
                "module": type(pl_module).__qualname__,
                "hparams": dict(pl_module.hparams),
                "data": dict(datamodule.hparams) if datamodule is not None else None,
                "seed": _seed(),
                "global_step": int(trainer.global_step),
                "epochs": int(trainer.current_epoch),
                "seconds": round(time.perf_counter() - self._start, 1),
                "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            }
            (tmp / "training.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
            if self.dirpath.exists():
                shutil.rmtree(self.dirpath)
            tmp.rename(self.dirpath)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def _apply_umask(folder: Path) -> None:
    """Give ``folder`` and what it holds the modes the user's umask gives new files (mkdtemp made it 0700)."""
    from surrogateshap.io import current_umask

    mask = current_umask()
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _seed() -> int | None:
    import os

    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None else None
