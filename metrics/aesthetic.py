"""Aesthetic score: the coalition metric (a weighted mean) and the scorer that makes the scores.

The scorer is a CLIP image embedding (Hugging Face ``transformers`` CLIP, loaded from a local
folder), L2-normalised, followed by a LAION aesthetic head loaded from a local weights file:
either the "improved aesthetic predictor" MLP (``layers.0`` ... ``layers.7``) or the original
linear head (``weight``, ``bias``). Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mean import ContributorMean

#: Config keys (relative to the aesthetic utility's options) naming the two weight files.
CLIP_CONFIG_KEY = "clip_path"
HEAD_CONFIG_KEY = "head_path"

# OpenAI CLIP's pixel statistics (used when the model folder has no preprocessor_config.json)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ContributorAestheticScore(ContributorMean):
    """Mixture-weighted mean aesthetic score of a coalition's samples (higher is better).

    Data: one score per sample ``(N,)``, e.g. from ``AestheticScorer``.
    """

    higher_is_better = True

    def __init__(self, feature: str = "aesthetic", num_contributors: int | None = None, **kwargs: Any) -> None:
        super().__init__(feature=feature, num_contributors=num_contributors, **kwargs)


class LaionAestheticMLP(nn.Module):
    """The LAION "improved aesthetic predictor" head: embedding ``(B, d)`` -> score ``(B, 1)``.

    Layer indices match the published state dicts (``layers.0/2/4/6/7``).
    """

    def __init__(self, input_dim: int = 768) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.layers = nn.Sequential(
            nn.Linear(self.input_dim, 1024),
            nn.Dropout(0.2),
            nn.Linear(1024, 128),
            nn.Dropout(0.2),
            nn.Linear(128, 64),
            nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, embeddings: Tensor) -> Tensor:
        """Scores ``(B, 1)`` for L2-normalised embeddings ``(B, d)``."""
        return self.layers(embeddings)


def _missing_weights(what: str, path: Path, key: str, how: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found: '{path}' (config key `{key}`). This machine downloads nothing: {how} Copy it to "
        f"that path, or set `{key}` to where it is."
    )


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"'{path}' does not hold a state dict of tensors.")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_aesthetic_head(path: str | os.PathLike, input_dim: int) -> nn.Module:
    """Load a LAION aesthetic head (MLP or linear) from a ``.pth``/``.pt``/``.safetensors`` state dict."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise _missing_weights(
            "Aesthetic head weights",
            path,
            HEAD_CONFIG_KEY,
            "on a connected machine get the LAION aesthetic predictor's state dict (e.g. "
            "sac+logos+ava1-l14-linearMSE.pth from LAION's improved-aesthetic-predictor for ViT-L/14, "
            "768-d).",
        )
    state = _read_state_dict(path)
    if "layers.0.weight" in state:
        head: nn.Module = LaionAestheticMLP(int(state["layers.0.weight"].shape[1]))
    elif set(state) == {"weight", "bias"} and state["weight"].ndim == 2 and state["weight"].shape[0] == 1:
        head = nn.Linear(int(state["weight"].shape[1]), 1)
    else:
        raise ValueError(
            f"'{path}' is neither a LAION aesthetic MLP (layers.0 ... layers.7) nor a linear head "
            f"(weight, bias); its keys are {sorted(state)[:8]}."
        )
    got = head.input_dim if isinstance(head, LaionAestheticMLP) else head.in_features
    if got != input_dim:
        raise ValueError(
            f"aesthetic head '{path}' takes {got}-d embeddings but the CLIP model projects to {input_dim}-d; "
            "use the head trained for this CLIP model."
        )
    head.load_state_dict(state)
    return head.eval()


def load_clip_vision(path: str | os.PathLike) -> nn.Module:
    """CLIP vision tower with its projection (``CLIPVisionModelWithProjection``) from a local folder.

    The folder may hold a full ``CLIPModel`` or a vision-only model (``save_pretrained``).
    """
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise _missing_weights(
            "CLIP model folder",
            path,
            CLIP_CONFIG_KEY,
            "on a connected machine save one with `CLIPModel.from_pretrained(<hub name, e.g. "
            "openai/clip-vit-large-patch14>).save_pretrained(DIR)` and `CLIPImageProcessor.from_pretrained("
            "<same>).save_pretrained(DIR)`.",
        )
    from transformers import CLIPVisionModelWithProjection
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a full CLIPModel's text weights are expected to be unused
    try:
        model, info = CLIPVisionModelWithProjection.from_pretrained(str(path), output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys", []))
    if missing:
        raise ValueError(f"CLIP folder '{path}' lacks vision weights: {sorted(missing)[:5]} ...")
    return model.eval()


class AestheticScorer(nn.Module):
    """Per-image aesthetic scores: CLIP image embedding, L2-normalised, then a LAION aesthetic head.

    Parameters
    ----------
    clip_path : local folder of a Hugging Face CLIP model (``save_pretrained``); its
        ``preprocessor_config.json``, when present, defines preprocessing (``CLIPImageProcessor``).
        Without it images are resized (shorter side, bicubic, antialiased) to the model's
        ``image_size``, center-cropped and normalised with OpenAI CLIP's mean and std.
    head_path : local ``.pth``/``.pt``/``.safetensors`` state dict of the aesthetic head.
    device : where the models run.
    batch_size : images per forward pass.
    """

    def __init__(
        self,
        clip_path: str | os.PathLike,
        head_path: str | os.PathLike,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        device = torch.device(device)
        self.batch_size = int(batch_size)
        self.clip = load_clip_vision(clip_path).to(device)
        self.embed_dim = int(self.clip.config.projection_dim)
        self.image_size = int(self.clip.config.image_size)
        self.head = load_aesthetic_head(head_path, self.embed_dim).to(device)
        self.processor = None
        if (Path(clip_path).expanduser() / "preprocessor_config.json").is_file():
            from transformers import CLIPImageProcessor

            self.processor = CLIPImageProcessor.from_pretrained(str(Path(clip_path).expanduser()))

    @property
    def device(self) -> torch.device:
        """Where the models are (follows ``.to``)."""
        return next(self.head.parameters()).device

    def preprocess(self, images: Tensor) -> Tensor:
        """CLIP pixel values ``(B, 3, S, S)`` for images ``(B, 3, H, W)`` in [0, 1] or uint8."""
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}.")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if self.processor is not None:
            out = self.processor(images=list(x.cpu()), return_tensors="pt", do_rescale=False)
            return out["pixel_values"]
        from torchvision.transforms.v2 import functional as TF

        x = TF.resize(x, [self.image_size], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        x = TF.center_crop(x, [self.image_size, self.image_size]).clamp(0, 1)
        return TF.normalize(x, list(_CLIP_MEAN), list(_CLIP_STD))

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """L2-normalised CLIP image embeddings ``(B, projection_dim)``."""
        pixels = self.preprocess(images)
        out = []
        for start in range(0, pixels.shape[0], self.batch_size):
            batch = pixels[start : start + self.batch_size].to(self.device)
            out.append(F.normalize(self.clip(pixel_values=batch).image_embeds.float(), dim=-1))
        if not out:
            return torch.zeros(0, self.embed_dim, device=self.device)
        return torch.cat(out)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Aesthetic scores ``(B,)`` float32."""
        return self.head(self.embed(images))[:, 0]
