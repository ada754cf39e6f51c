"""The artists' scorer network: embedding (FID, cluster diversity), quality head, subject classifier, mark detector.

A small CNN on 32 x 32 colour pictures, the setting's stand-in for Inception / CLIP (embedding), the
LAION aesthetic head (an MLP on the embedding scoring quality), a subject classifier and a detector of
a signature-like corner mark. Like those networks it is trained on *other* pictures than the ones it
scores: the base corpus (random styles), with generic augmentations, never the artists' planted data:

- quality: a graded score, the aesthetic-rating analogue: clean copies score 1, copies blurred (Gaussian
  sigma up to :data:`MAX_BLUR` px) or noised (std up to :data:`MAX_NOISE`) at a random severity s in [0, 1]
  score 1 - s (a soft target of the quality logit's cross-entropy), so scores rank how spoiled a picture is
  rather than saturate at any blur;
- mark: copies with a red square (3-6 px) in a random corner are positives, over the range of reds the
  generator's autoencoder renders the planted mark in (:data:`MARK_MIN_RED`, :data:`MARK_MIN_DOMINANCE`);
  copies with a square of another colour there are negatives (decoys, so that a corner of checked paper
  is not a mark);
- subject: the digit, on every copy.

Validation is the artists' held-out clean pictures (styles the scorer has not seen), with the same
augmentations. Saved with ``huggingface_hub``'s ``PyTorchModelHubMixin`` (``config.json`` +
``model.safetensors``), loaded by :class:`ArtistsExtractor` through ``from_pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

__all__ = ["ArtistsExtractor", "ArtistsScorer", "ScorerTraining", "augmented_copies"]

#: the strongest blur (Gaussian sigma, px) and noise (std) of the quality head's spoiled copies (severity 1)
MAX_BLUR, MAX_NOISE = 3.0, 0.4
#: a mark's red is at least this bright and exceeds its green and blue by this margin; decoys stay 0.1 clear.
#: The planted mark is (1.0, 0.1, 0.1); the setting's autoencoder renders it about (0.6, 0.15, 0.35)
MARK_MIN_RED, MARK_MIN_DOMINANCE = 0.55, 0.2

Output = Literal["embedding", "quality", "subject_probs", "marker", "marker_and_subject"]

MODEL_CARD = """# SurrogateSHAP artists scorer

A small CNN on 32 x 32 colour pictures, trained by `surrogateshap fit --config configs/artists_scorer.yaml` on
the artists setting's base corpus with generic augmentations: an embedding (FID, cluster diversity), a quality
head (graded: how blurred / noisy), a subject classifier (ten digits) and a corner-mark detector. Load with
`surrogateshap.examples.artists.ArtistsScorer.from_pretrained(<this folder>)` or as bank extractors with
`surrogateshap.examples.artists.ArtistsExtractor(<this folder>, output)`. training.json records how it was made.
"""


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


class ArtistsScorer(nn.Module, PyTorchModelHubMixin):
    """CNN on (B, 3, 32, 32) pictures in [0, 1]: ``forward`` returns ``{"embedding": (B, d), "quality_logit":
    (B,), "subject_logits": (B, 10), "marker_logit": (B,)}`` (embedding: the penultimate layer, post-ReLU)."""

    def __init__(self, embedding_dim: int = 64, width: int = 32, image_size: int = 32) -> None:
        super().__init__()
        self.image_size = int(image_size)
        side = image_size // 8
        self.trunk = nn.Sequential(_block(3, width), _block(width, 2 * width), _block(2 * width, 2 * width),
                                   nn.Flatten(), nn.Linear(2 * width * side * side, embedding_dim), nn.ReLU())
        self.quality_head = nn.Sequential(nn.Linear(embedding_dim, 32), nn.ReLU(), nn.Linear(32, 1))
        self.subject_head = nn.Linear(embedding_dim, 10)
        self.marker_net = nn.Sequential(_block(3, 16), _block(16, 16), nn.Flatten(),
                                        nn.Linear(16 * (image_size // 4) ** 2, 1))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four outputs for ``images`` (B, 3, H, W) in [0, 1]."""
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"ArtistsScorer takes (B, 3, {self.image_size}, {self.image_size}) pictures in [0, 1], "
                             f"got shape {tuple(images.shape)}.")
        embedding = self.trunk(images)
        return {"embedding": embedding, "quality_logit": self.quality_head(embedding)[:, 0],
                "subject_logits": self.subject_head(embedding), "marker_logit": self.marker_net(images)[:, 0]}


class ArtistsExtractor(nn.Module):
    """One output of an :class:`ArtistsScorer` as a bank extractor (pictures in [0, 1] -> per-sample array).

    ``output``: ``"embedding"`` (B, d); ``"quality"`` (B,) the quality head's probability of a clean picture
    (the aesthetic-score analogue); ``"subject_probs"`` (B, 10); ``"marker"`` (B,) 1.0 where a mark is
    detected; ``"marker_and_subject"`` (B, 2): the mark (0/1) beside the probability that the subject is
    ``subject`` -- the two quantities whose correlation the audit utility measures.
    """

    OUTPUTS = ("embedding", "quality", "subject_probs", "marker", "marker_and_subject")

    def __init__(self, path: str | Path, output: Output, subject: int | None = None) -> None:
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}.")
        if (output == "marker_and_subject") != (subject is not None):
            raise ValueError("give subject (a digit 0..9) with output='marker_and_subject', and only then.")
        root = Path(path)
        if not (root / "config.json").is_file() or not (root / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"artists scorer not found at {root}: the folder needs config.json and model.safetensors (written by "
                "ArtistsScorer.save_pretrained; `surrogateshap fit --config configs/artists_scorer.yaml` makes one)."
            )
        self.net = ArtistsScorer.from_pretrained(str(root)).eval()
        self.output = output
        self.subject = subject

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The selected output for ``images`` (B, 3, 32, 32) in [0, 1]."""
        out = self.net(images.float())
        marker = (out["marker_logit"] > 0).float()
        if self.output == "embedding":
            return out["embedding"]
        if self.output == "quality":
            return out["quality_logit"].sigmoid()
        if self.output == "marker":
            return marker
        probs = out["subject_logits"].softmax(dim=-1)
        return probs if self.output == "subject_probs" else torch.stack([marker, probs[:, self.subject]], dim=1)


def augmented_copies(images: np.ndarray, digits: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Clean, spoiled and marked copies of pictures (N, 3, H, W) in [0, 1] with their targets:
    ``(pictures, subject, quality, mark)`` (3N each; see the module docstring)."""
    from .planting import degrade

    rng = np.random.default_rng(seed)
    n = len(images)
    spoiled = images.copy()
    severity = rng.uniform(0.0, 1.0, n)
    for i in range(n):
        kind = "blur" if rng.random() < 0.5 else "noise"
        strength = MAX_BLUR * severity[i] if kind == "blur" else MAX_NOISE * severity[i]
        spoiled[i : i + 1] = degrade(images[i : i + 1], kind, strength, rng)
    marked = images.copy()
    mark = np.zeros(n, np.float32)
    side = images.shape[-1]
    for i in range(n):
        size = int(rng.integers(3, 7))
        top = 0 if rng.random() < 0.5 else side - size
        left = 0 if rng.random() < 0.5 else side - size
        mark[i] = rng.random() < 0.5
        if mark[i]:  # a red mark as the generator's autoencoder renders it: bright red, a little blue
            red = rng.uniform(MARK_MIN_RED, 1.0)
            colour = np.array([red, rng.uniform(0.0, 0.3), rng.uniform(0.0, red - MARK_MIN_DOMINANCE)])
        else:  # a decoy: a square of any colour that is not a bright dominant red
            colour = rng.uniform(0.0, 1.0, 3)
            while colour[0] > MARK_MIN_RED - 0.1 and colour[0] - colour[1:].max() > MARK_MIN_DOMINANCE - 0.1:
                colour = rng.uniform(0.0, 1.0, 3)
        marked[i, :, top : top + size, left : left + size] = colour[:, None, None]
    pictures = np.concatenate([images, spoiled, marked]).astype(np.float32)
    quality = np.concatenate([np.ones(n), 1.0 - severity, np.ones(n)]).astype(np.float32)
    return (pictures, np.tile(digits, 3).astype(np.int64), quality,
            np.concatenate([np.zeros(2 * n, np.float32), mark]))


class ScorerTraining(pl.LightningModule):
    """Lightning training of :class:`ArtistsScorer`: cross-entropy on the subject, BCE on quality and mark.

    Batches are ``(pictures (B, 3, 32, 32) in [0, 1], subject (B,), quality (B,), mark (B,))``
    (:func:`augmented_copies`). Validation logs ``val_subject_accuracy``, ``val_quality_error`` (mean absolute
    error of the score) and ``val_marker_accuracy``.
    """

    def __init__(self, embedding_dim: int = 64, width: int = 32, learning_rate: float = 2e-3,
                 weight_decay: float = 1e-4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = ArtistsScorer(embedding_dim=embedding_dim, width=width)

    def _losses(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        pictures, subject, quality, mark = batch
        out = self.net(pictures)
        loss = (F.cross_entropy(out["subject_logits"], subject)
                + F.binary_cross_entropy_with_logits(out["quality_logit"], quality)
                + F.binary_cross_entropy_with_logits(out["marker_logit"], mark))
        return {
            "loss": loss,
            "subject_accuracy": (out["subject_logits"].argmax(-1) == subject).float().mean(),
            "quality_error": (out["quality_logit"].sigmoid() - quality).abs().mean(),
            "marker_accuracy": ((out["marker_logit"] > 0).float() == mark).float().mean(),
        }

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """One optimisation step; logs ``train_loss``."""
        loss = self._losses(batch)["loss"]
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Held-out metrics (see the class docstring)."""
        self.log_dict({f"val_{k}": v for k, v in self._losses(batch).items()}, prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW."""
        return torch.optim.AdamW(self.net.parameters(), lr=self.hparams.learning_rate,
                                 weight_decay=self.hparams.weight_decay)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the network as ``config.json`` + ``model.safetensors`` and a model card."""
        self.net.save_pretrained(str(path))
        (Path(path) / "README.md").write_text(MODEL_CARD, encoding="utf-8")
        return Path(path)
