"""Tiny, randomly initialised pipelines built offline (tests and benchmarks): text-to-image and class-conditional.

Every component is made from a config with random weights; the tokenizers are built offline (the
artists setting's byte-level CLIP BPE with no merges, a character-level T5 unigram written here),
so nothing is downloaded. ``save_*`` functions write a pipeline folder with ``save_pretrained``
that the backends load through their real ``from_pretrained``.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_LEN = 16  # tokenizer max length: short prompts keep the text encoders cheap


def clip_tokenizer():
    """A byte-level CLIP tokenizer (every byte, with and without ``</w>``; no merges)."""
    from surrogateshap.examples.artists.text import caption_tokenizer

    return caption_tokenizer(words=())


def t5_tokenizer():
    """A character-level T5 unigram tokenizer (no sentencepiece model needed)."""
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -3.0) for c in range(ord(" ") + 1, ord("~") + 1)]
    pieces += [("▁" + chr(c), -2.5) for c in range(ord("a"), ord("z") + 1)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=TEXT_LEN)


def clip_text_encoder(vocab_size: int, seed: int):
    """A 2-layer CLIP text encoder with 32-d hidden states."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, vocab_size=vocab_size, hidden_size=32,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, projection_dim=32,
        max_position_embeddings=TEXT_LEN, hidden_act="gelu",
    )
    return CLIPTextModel(config).eval()


def tiny_sd_pipeline(seed: int = 0):
    """A StableDiffusionPipeline with a 2-block UNet, a 2-block VAE and a 2-layer CLIP (32 px images)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=4,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2, sample_size=32,
    )
    tokenizer = clip_tokenizer()
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False
    )
    return StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=clip_text_encoder(len(tokenizer), seed + 2), tokenizer=tokenizer,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def tiny_flux_pipeline(seed: int = 0):
    """A FluxPipeline with a 1+1-layer transformer (guidance embedding on), 1-block VAE, CLIP and T5."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    torch.manual_seed(seed + 3)
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    ).eval()
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip_text_encoder(len(tokenizer), seed + 2),
        tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=tokenizer_2, transformer=transformer,
    )


def save_tiny_sd(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny Stable Diffusion pipeline folder and return it."""
    folder = Path(folder)
    tiny_sd_pipeline(seed).save_pretrained(folder)
    return folder


def save_tiny_flux(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny FLUX pipeline folder and return it."""
    folder = Path(folder)
    tiny_flux_pipeline(seed).save_pretrained(folder)
    return folder


def save_random_lora(pipe, folder: str | Path, target: str, rank: int = 4, seed: int = 0) -> Path:
    """Add a LoRA adapter with random (nonzero) weights to ``pipe.<target>`` and save it; returns the file.

    ``target`` is ``"unet"`` (Stable Diffusion) or ``"transformer"`` (FLUX). The adapter is
    removed from ``pipe`` again, so the pipeline stays the base model.
    """
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model = getattr(pipe, target)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True,
                                 target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft initialises B to zero: the adapter would be a no-op
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    layers = get_peft_model_state_dict(model)
    folder = Path(folder)
    pipe.save_lora_weights(folder, **{f"{target}_lora_layers": layers})
    model.delete_adapters("default")
    return folder / "pytorch_lora_weights.safetensors"


def save_tiny_class_ddpm(folder: str | Path, num_labels: int, attention: bool = False) -> Path:
    """A tiny class-conditional DDPM (8x8 grey, ``num_labels`` + null label) saved with ``save_pretrained``.

    The class embeddings are spread far apart, so different labels give visibly different samples.
    """
    from diffusers import DDIMScheduler, UNet2DModel

    from surrogateshap.generation import ClassConditionalDDPM

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D" if attention else "DownBlock2D"),
        up_block_types=("AttnUpBlock2D" if attention else "UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
        num_class_embeds=num_labels + 1,
    )
    with torch.no_grad():
        unet.class_embedding.weight.copy_(
            3 * torch.randn(unet.class_embedding.weight.shape, generator=torch.Generator().manual_seed(1))
        )
    ClassConditionalDDPM(unet, DDIMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return Path(folder)

