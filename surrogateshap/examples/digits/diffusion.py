"""Training a class-conditional DDPM with classifier-free guidance (label dropout) in Lightning.

The model is a ``diffusers.UNet2DModel`` with ``num_class_embeds = num_labels + 1``: the last
embedding is the null label that label dropout trains for classifier-free guidance, the layout
:class:`~surrogateshap.generation.backends.ddpm.ClassConditionalDDPM` samples from. The loss is
the usual epsilon-prediction MSE at uniformly drawn timesteps of a ``DDPMScheduler``. An
exponential moving average of the weights (``torch.optim.swa_utils``) is what gets exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ...generation.backends.ddpm import ClassConditionalDDPM
from ..training import cosine_adamw

__all__ = ["DiffusionTraining", "build_unet"]


def build_unet(
    num_labels: int,
    sample_size: int = 8,
    channels: int = 1,
    block_out_channels: Sequence[int] = (32, 64),
    layers_per_block: int = 1,
    norm_num_groups: int = 8,
) -> UNet2DModel:
    """A small class-conditional ``UNet2DModel`` (no attention) with ``num_labels + 1`` class embeddings."""
    depth = len(block_out_channels)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=layers_per_block,
        block_out_channels=tuple(block_out_channels),
        down_block_types=("DownBlock2D",) * depth,
        up_block_types=("UpBlock2D",) * depth,
        norm_num_groups=norm_num_groups,
        num_class_embeds=num_labels + 1,
    )


class DiffusionTraining(pl.LightningModule):
    """Lightning module that trains a class-conditional UNet for classifier-free guidance.

    Parameters
    ----------
    num_labels : real class labels (contributors); index ``num_labels`` is the null label.
    label_dropout : probability that a training label is replaced by the null label.
    learning_rate, weight_decay : AdamW; the rate decays with a cosine to 0 over the run.
    num_train_timesteps, beta_schedule : the ``DDPMScheduler`` noise schedule.
    ema_decay : decay of the exported weights' moving average (0 exports the raw weights).
    sample_size, block_out_channels, layers_per_block : UNet shape (see :func:`build_unet`).

    Batches are ``(images (B, C, H, W) in [-1, 1], labels (B,) int64)``.
    """

    def __init__(
        self,
        num_labels: int = 20,
        label_dropout: float = 0.1,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.0,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        ema_decay: float = 0.995,
        sample_size: int = 8,
        block_out_channels: Sequence[int] = (32, 64),
        layers_per_block: int = 1,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {label_dropout}.")
        self.save_hyperparameters()
        self.unet = build_unet(num_labels, sample_size, 1, block_out_channels, layers_per_block)
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule)
        self.ema = AveragedModel(self.unet, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if ema_decay > 0 else None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Epsilon-prediction MSE at random timesteps; labels dropped to the null label at ``label_dropout``."""
        images, labels = batch
        noise = torch.randn_like(images)
        n_steps = self.noise_scheduler.config.num_train_timesteps
        steps = torch.randint(0, n_steps, (images.shape[0],), device=self.device)
        noisy = self.noise_scheduler.add_noise(images, noise, steps)
        drop = torch.rand(labels.shape, device=self.device) < self.hparams.label_dropout
        labels = torch.where(drop, torch.full_like(labels, self.hparams.num_labels), labels)
        loss = F.mse_loss(self.unet(noisy, steps, class_labels=labels).sample, noise)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        """Update the moving average of the weights."""
        if self.ema is not None:
            self.ema.update_parameters(self.unet)

    def configure_optimizers(self) -> dict:
        """AdamW with a cosine decay over the Trainer's total steps."""
        return cosine_adamw(self, self.unet.parameters(), self.hparams.learning_rate, self.hparams.weight_decay)

    def exported_unet(self) -> UNet2DModel:
        """The UNet to ship: the moving average of the weights (or the raw weights without EMA)."""
        if self.ema is None:
            return self.unet
        unet = build_unet(
            self.hparams.num_labels, self.hparams.sample_size, 1, self.hparams.block_out_channels,
            self.hparams.layers_per_block,
        )
        unet.load_state_dict(self.ema.module.state_dict())
        return unet.eval()

    def to_backend(self, batch_invariant: bool = True) -> ClassConditionalDDPM:
        """A DDIM sampling backend over the exported UNet, with the training noise schedule."""
        scheduler = DDIMScheduler.from_config(self.noise_scheduler.config)
        return ClassConditionalDDPM(self.exported_unet(), scheduler, batch_invariant=batch_invariant)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the exported model in the diffusers layout ``ClassConditionalDDPM.from_pretrained`` reads."""
        return self.to_backend().save_pretrained(path)
