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
from torch import Tensor, nn

from .extractors import HFImageEmbedding, load_clip_vision
from .mean import ContributorMean

__all__ = [
    "AestheticScorer", "ContributorAestheticScore", "LaionAestheticMLP", "load_aesthetic_head", "load_clip_vision",
]

#: Config keys (relative to the aesthetic utility's options) naming the two weight files.
CLIP_CONFIG_KEY = "clip_path"
HEAD_CONFIG_KEY = "head_path"


class ContributorAestheticScore(ContributorMean):
    """Mixture-weighted mean aesthetic score of a coalition's samples (higher is better).

    Data: one score per sample ``(N,)``, e.g. from ``AestheticScorer``.

    >>> metric = ContributorAestheticScore(num_contributors=1)
    >>> metric.update(torch.tensor([5.0, 7.0]), torch.tensor([0, 0]))
    >>> metric.compute()
    tensor(6., dtype=torch.float64)
    """

    higher_is_better = True

    def __init__(self, feature: str = "aesthetic", num_contributors: int | None = None, **kwargs: Any) -> None:
        super().__init__(feature=feature, num_contributors=num_contributors, **kwargs)


class LaionAestheticMLP(nn.Module):
    """The LAION "improved aesthetic predictor" head: embedding ``(B, d)`` -> score ``(B, 1)``.

    Layer indices match the published state dicts (``layers.0/2/4/6/7``).

    >>> LaionAestheticMLP(input_dim=4)(torch.randn(3, 4)).shape
    torch.Size([3, 1])
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
    """Load a LAION aesthetic head (MLP or linear) from a ``.pth``/``.pt``/``.safetensors`` state dict.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "head.pth"
    >>> torch.save(LaionAestheticMLP(input_dim=4).state_dict(), path)
    >>> type(load_aesthetic_head(path, input_dim=4)).__name__
    'LaionAestheticMLP'
    """
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

    >>> import tempfile
    >>> from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    >>> folder = Path(tempfile.mkdtemp())  # a tiny CLIP and head saved locally (real ones: ViT-L/14 and LAION's head)
    >>> config = CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...                           image_size=32, patch_size=16, projection_dim=4)
    >>> CLIPVisionModelWithProjection(config).save_pretrained(folder)
    >>> torch.save(LaionAestheticMLP(input_dim=4).state_dict(), folder / "head.pth")
    >>> AestheticScorer(folder, folder / "head.pth")(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2])
    """

    def __init__(
        self,
        clip_path: str | os.PathLike,
        head_path: str | os.PathLike,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        # the CLIP embedding is the shared image-embedding extractor (L2-normalised)
        self.embedder = HFImageEmbedding(
            clip_path, kind="clip", device=device, batch_size=batch_size, normalize=True, config_key=CLIP_CONFIG_KEY
        )
        self.batch_size = int(batch_size)
        self.embed_dim = self.embedder.embed_dim
        self.image_size = self.embedder.image_size
        self.head = load_aesthetic_head(head_path, self.embed_dim).to(torch.device(device))

    @property
    def clip(self) -> nn.Module:
        """The CLIP vision model (``CLIPVisionModelWithProjection``)."""
        return self.embedder.model

    @property
    def processor(self) -> object | None:
        """The folder's ``CLIPImageProcessor``, or None (then CLIP's default preprocessing)."""
        return self.embedder.processor

    @property
    def device(self) -> torch.device:
        """Where the models are (follows ``.to``)."""
        return next(self.head.parameters()).device

    def preprocess(self, images: Tensor) -> Tensor:
        """CLIP pixel values ``(B, 3, S, S)`` for images ``(B, 3, H, W)`` in [0, 1] or uint8."""
        return self.embedder.preprocess(images)

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """L2-normalised CLIP image embeddings ``(B, projection_dim)``."""
        return self.embedder(images)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Aesthetic scores ``(B,)`` float32."""
        embeddings = self.embed(images)
        head_dtype = next(self.head.parameters()).dtype
        return self.head(embeddings.to(head_dtype))[:, 0].float()
