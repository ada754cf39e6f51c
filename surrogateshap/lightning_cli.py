"""``surrogateshap fit`` / ``predict``: LightningCLI over the project's modules and YAML configs."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["run_lightning_cli"]


def run_lightning_cli(args: Sequence[str] | None) -> None:
    """Run ``LightningCLI`` with ``args`` (subcommand first, e.g. ``["fit", "--config", "x.yaml"]``;
    None: the process's command line).

    Model and data module are given in the config as ``class_path`` / ``init_args`` (any
    ``LightningModule`` / ``LightningDataModule``), so the one command trains the DDPM, the
    feature network or a user's own modules.
    """
    from lightning.pytorch.cli import LightningCLI

    LightningCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=None if args is None else list(args),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
