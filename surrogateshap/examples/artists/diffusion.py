"""The artists' text-to-image model, trained in three Lightning stages, each written in the diffusers layout.

1. :class:`AutoencoderTraining`: a small ``AutoencoderKL`` (32 x 32 x 3 pictures <-> 8 x 8 x 4 latents) on
   the base corpus; its ``scaling_factor`` is set so the latents have unit variance, as Stable Diffusion's.
2. :class:`BaseModelTraining`: a ``UNet2DConditionModel`` with cross-attention and the CLIP text
   encoder of :mod:`.text`, trained together on the base corpus' generic captions (10% dropped to the
   empty prompt, for classifier-free guidance), in the frozen autoencoder's latent space; exported as a
   ``StableDiffusionPipeline`` folder (unet, vae, text_encoder, tokenizer, DDIM scheduler).
3. :class:`LoraTraining`: the contributors' model, peft LoRAs on the base UNet and the text encoder,
   fine-tuned on the artists' captioned pictures; written with ``StableDiffusionPipeline.save_lora_weights``.

Each stage's ``save_pretrained`` is what :class:`~surrogateshap.callbacks.SavePretrained` calls when
``surrogateshap fit --config configs/artists_<stage>.yaml`` ends. Batches are ``(images (B, 3, 32, 32)
in [-1, 1], captions)`` from :class:`~surrogateshap.examples.artists.data.ArtistsDataModule`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..training import cosine_adamw

__all__ = ["LORA_TARGETS", "TEXT_LORA_TARGETS", "AutoencoderTraining", "BaseModelTraining", "LoraTraining",
           "build_autoencoder", "build_unet"]

#: the UNet layers the LoRA adapts: query, key, value and output of every attention layer, the transformer
#: blocks' projections and feed-forward layers, and the residual blocks' convolutions (attention alone
#: learned the artists' palettes but not their strokes and subjects as well)
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2")
#: the text encoder's layers the LoRA adapts (query, key, value and output of every attention layer)
TEXT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def build_autoencoder(block_out_channels: Sequence[int] = (16, 32, 32), latent_channels: int = 4) -> nn.Module:
    """A small ``AutoencoderKL``: each block after the first halves the side (32 px -> 8 x 8 latents)."""
    from diffusers import AutoencoderKL

    depth = len(block_out_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=tuple(block_out_channels),
        down_block_types=("DownEncoderBlock2D",) * depth, up_block_types=("UpDecoderBlock2D",) * depth,
        layers_per_block=1, norm_num_groups=8, sample_size=32,
    )


def build_unet(cross_attention_dim: int, block_out_channels: Sequence[int] = (32, 64),
               sample_size: int = 8) -> nn.Module:
    """A small ``UNet2DConditionModel`` with cross-attention to the text encoder's states in every block."""
    from diffusers import UNet2DConditionModel

    depth = len(block_out_channels)
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=tuple(block_out_channels), down_block_types=("CrossAttnDownBlock2D",) * depth,
        up_block_types=("CrossAttnUpBlock2D",) * depth, cross_attention_dim=cross_attention_dim,
        norm_num_groups=8, attention_head_dim=4,
    )


class AutoencoderTraining(pl.LightningModule):
    """Train the autoencoder of the artists' model: L1 + MSE reconstruction and a small KL term.

    Parameters
    ----------
    block_out_channels, latent_channels : the autoencoder's shape (:func:`build_autoencoder`).
    kl_weight : weight of the posterior's KL divergence to N(0, 1).
    learning_rate : AdamW, decayed with a cosine to 0 over the run.
    """

    def __init__(self, block_out_channels: Sequence[int] = (16, 32, 32), latent_channels: int = 4,
                 kl_weight: float = 1e-6, learning_rate: float = 2e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.vae = build_autoencoder(block_out_channels, latent_channels)

    def training_step(self, batch: tuple[torch.Tensor, list[str]], batch_idx: int) -> torch.Tensor:
        """Reconstruct a batch through a posterior sample."""
        images, _ = batch
        posterior = self.vae.encode(images).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        loss = F.l1_loss(recon, images) + F.mse_loss(recon, images) + self.hparams.kl_weight * posterior.kl().mean()
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> dict:
        """AdamW with a cosine decay over the Trainer's total steps."""
        return cosine_adamw(self, self.vae.parameters(), self.hparams.learning_rate)

    def on_train_epoch_end(self) -> None:
        """Set ``scaling_factor`` to 1 / the latents' standard deviation on the training data (what is saved)."""
        with torch.no_grad():
            latents = torch.cat([self.vae.encode(images.to(self.device)).latent_dist.mean
                                 for images, _ in self.trainer.train_dataloader])
        self.vae.register_to_config(scaling_factor=float(1.0 / latents.std()))

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write the autoencoder with ``AutoencoderKL.save_pretrained``."""
        self.vae.save_pretrained(str(path))
        return Path(path)


class BaseModelTraining(pl.LightningModule):
    """Pretrain the base text-to-image model: UNet and CLIP text encoder on generic captions.

    Parameters
    ----------
    autoencoder_path : folder of the trained autoencoder (``AutoencoderTraining``), frozen here.
    caption_dropout : probability that a caption is replaced by the empty prompt.
    learning_rate : AdamW over the UNet and the text encoder, cosine-decayed.
    num_train_timesteps, beta_schedule : the ``DDPMScheduler`` noise schedule (sampled with DDIM).
    ema_decay : decay of the exported weights' moving average (0: the raw weights).
    block_out_channels : UNet shape; ``text_hidden_size`` the text encoder's width (= cross-attention dim).
    """

    def __init__(
        self,
        autoencoder_path: str,
        caption_dropout: float = 0.1,
        learning_rate: float = 1e-3,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        ema_decay: float = 0.999,
        block_out_channels: Sequence[int] = (32, 64),
        text_hidden_size: int = 64,
    ) -> None:
        super().__init__()
        from diffusers import AutoencoderKL, DDPMScheduler

        from .text import caption_tokenizer, text_encoder

        _check_dropout(caption_dropout)
        self.save_hyperparameters()
        self.vae = AutoencoderKL.from_pretrained(str(autoencoder_path), local_files_only=True).requires_grad_(False)
        self.tokenizer = caption_tokenizer()
        self.text_encoder = text_encoder(len(self.tokenizer), hidden_size=text_hidden_size)
        self.unet = build_unet(text_hidden_size, block_out_channels)
        # latents are not clipped to [-1, 1] (unlike pixels): clip_sample off, also in the exported DDIM scheduler
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                             clip_sample=False)
        trained = nn.ModuleDict({"unet": self.unet, "text_encoder": self.text_encoder})
        self.ema = AveragedModel(trained, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if ema_decay > 0 else None

    def training_step(self, batch: tuple[torch.Tensor, list[str]], batch_idx: int) -> torch.Tensor:
        """Epsilon-prediction MSE in latent space; captions dropped to "" at ``caption_dropout``."""
        images, captions = batch
        states = encode_prompts(self.tokenizer, self.text_encoder, _dropped(captions, self.hparams.caption_dropout))
        return _diffusion_loss(self, images, states)

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        """Update the moving average of the weights."""
        if self.ema is not None:
            self.ema.update_parameters(nn.ModuleDict({"unet": self.unet, "text_encoder": self.text_encoder}))

    def configure_optimizers(self) -> dict:
        """AdamW over the UNet and the text encoder, cosine-decayed."""
        params = [*self.unet.parameters(), *self.text_encoder.parameters()]
        return cosine_adamw(self, params, self.hparams.learning_rate)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write a ``StableDiffusionPipeline`` folder (the moving-average weights, DDIM scheduler)."""
        from diffusers import DDIMScheduler, StableDiffusionPipeline

        exported = self.ema.module if self.ema is not None else {"unet": self.unet, "text_encoder": self.text_encoder}
        unet, encoder = exported["unet"], exported["text_encoder"]
        pipe = StableDiffusionPipeline(
            vae=self.vae, text_encoder=encoder.eval(), tokenizer=self.tokenizer, unet=unet.eval(),
            scheduler=DDIMScheduler.from_config(self.noise_scheduler.config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
        pipe.save_pretrained(str(path))
        return Path(path)


class LoraTraining(pl.LightningModule):
    """Fine-tune a LoRA of the base UNet (and of the text encoder) on the contributors' captioned pictures.

    The VAE and the base weights stay frozen. Adapting the text encoder too (as DreamBooth-style LoRA
    fine-tunes do) lets two names that share a word ("leon duval", "leon jansen") become distinct prompts;
    with the UNet alone such artists' pictures came out in each other's styles.

    Parameters
    ----------
    base_path : the base ``StableDiffusionPipeline`` folder (``BaseModelTraining``).
    rank : LoRA rank (``lora_alpha`` = rank: scale 1).
    targets : names of the UNet layers adapted (peft ``target_modules``; default :data:`LORA_TARGETS`).
    text_targets : names of the text encoder's layers adapted (default :data:`TEXT_LORA_TARGETS`; empty: the
        text encoder stays as it is).
    caption_dropout : probability that a caption is replaced by the empty prompt, as in the base model's
        training, so the fine-tuned model's unconditional prediction (classifier-free guidance) stays trained.
    learning_rate : AdamW over the LoRA weights, cosine-decayed.
    """

    def __init__(self, base_path: str, rank: int = 16, targets: Sequence[str] = LORA_TARGETS,
                 text_targets: Sequence[str] = TEXT_LORA_TARGETS, caption_dropout: float = 0.1,
                 learning_rate: float = 2e-3) -> None:
        super().__init__()
        from diffusers import DDPMScheduler, StableDiffusionPipeline
        from peft import LoraConfig, inject_adapter_in_model

        _check_dropout(caption_dropout)
        self.save_hyperparameters()
        pipe = StableDiffusionPipeline.from_pretrained(str(base_path), local_files_only=True, safety_checker=None,
                                                       feature_extractor=None, requires_safety_checker=False)
        self.vae = pipe.vae.requires_grad_(False)
        self.tokenizer = pipe.tokenizer
        self.text_encoder = pipe.text_encoder.requires_grad_(False)
        self.unet = pipe.unet.requires_grad_(False).train()
        self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                         target_modules=list(targets)))
        if text_targets:  # peft's own injection: transformers' add_adapter wants a newer peft than diffusers does
            inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                               target_modules=list(text_targets)), self.text_encoder.train())
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    def training_step(self, batch: tuple[torch.Tensor, list[str]], batch_idx: int) -> torch.Tensor:
        """Epsilon-prediction MSE in latent space on the artists' captions (dropped at ``caption_dropout``)."""
        images, captions = batch
        with torch.set_grad_enabled(bool(self.hparams.text_targets)):
            states = encode_prompts(self.tokenizer, self.text_encoder, _dropped(captions, self.hparams.caption_dropout))
        return _diffusion_loss(self, images, states)

    def configure_optimizers(self) -> dict:
        """AdamW over the LoRA weights only."""
        params = [p for module in (self.unet, self.text_encoder) for p in module.parameters() if p.requires_grad]
        return cosine_adamw(self, params, self.hparams.learning_rate)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``pytorch_lora_weights.safetensors`` with ``StableDiffusionPipeline.save_lora_weights``."""
        from diffusers import StableDiffusionPipeline
        from peft.utils import get_peft_model_state_dict

        # peft's own key format, which load_lora_weights reads as it is (diffusers' convert_state_dict_to_diffusers
        # renames the attention layers only, and a file mixing both formats loads without them)
        text = get_peft_model_state_dict(self.text_encoder) if self.hparams.text_targets else None
        StableDiffusionPipeline.save_lora_weights(str(path), unet_lora_layers=get_peft_model_state_dict(self.unet),
                                                  text_encoder_lora_layers=text, safe_serialization=True)
        return Path(path)


def _check_dropout(caption_dropout: float) -> None:
    if not 0.0 <= caption_dropout < 1.0:
        raise ValueError(f"caption_dropout must lie in [0, 1), got {caption_dropout}.")


def _dropped(captions: Sequence[str], rate: float) -> list[str]:
    """``captions`` with each replaced by the empty prompt with probability ``rate`` (Lightning's seeded RNG)."""
    drop = torch.rand(len(captions)).lt(rate).tolist()
    return ["" if d else c for c, d in zip(captions, drop)]


def encode_prompts(tokenizer: Any, text_encoder: nn.Module, prompts: list[str]) -> torch.Tensor:
    """The text encoder's last hidden states (B, tokens, d) for ``prompts``, padded as the pipeline pads them."""
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt")
    return text_encoder(tokens.input_ids.to(text_encoder.device))[0]


def _diffusion_loss(module: pl.LightningModule, images: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        latents = module.vae.encode(images).latent_dist.sample() * module.vae.config.scaling_factor
    noise = torch.randn_like(latents)
    steps = torch.randint(0, module.noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                          device=latents.device)
    noisy = module.noise_scheduler.add_noise(latents, noise, steps)
    loss = F.mse_loss(module.unet(noisy, steps, encoder_hidden_states=states).sample, noise)
    module.log("train_loss", loss, prog_bar=True)
    return loss
