"""The digits feature network: embedding (FID, Vendi), class probabilities (IS, quality), marker detector.

A small CNN on 8x8 grey digits, the embedded setting's stand-in for Inception (FID, IS), an
aesthetic predictor (its confidence) and a spurious-marker detector. It is trained on the
contributors' clean training images (the held-out reference split validates it) and on copies
of them:

- the classifier has 11 classes: the ten digits and *degraded* (class 10), taught with
  photometrically distorted copies (inverted, noisy or blurred at random strengths). Like an
  ImageNet network that has seen natural image statistics, it therefore sees any of the three
  corruption kinds a planting may use, in its embedding (FID, Vendi), its class probabilities
  (Inception Score) and its confidence (the quality score: the largest *digit* probability);
- the marker detector is a separate small branch, trained with a generic marker augmentation (a
  bright square of random size, 1-3 px, in a random corner, so it does not depend on one
  planting's marker); distorted copies without a marker are its negatives (a globally bright or
  noisy image is not a marker).

Saved and loaded with ``huggingface_hub``'s ``PyTorchModelHubMixin`` (``config.json`` +
``model.safetensors``; ``from_pretrained`` on a local folder), the way real feature models load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

__all__ = ["DigitsExtractor", "DigitsFeatureNet", "FeatureNetTraining"]

Output = Literal["embedding", "probs", "confidence", "marker"]

MODEL_CARD = """# SurrogateSHAP digits feature network

A small CNN on 8x8 grey digits (scikit-learn's digits), trained by `surrogateshap fit --config
configs/digits_features.yaml`: 11 classes (ten digits and *degraded*, taught with inverted, noisy
and blurred copies) and a separate corner-marker detector. It is the embedded demo's stand-in for
Inception (FID embedding, Inception Score probabilities), an aesthetic predictor (confidence) and a
spurious-marker detector. Load with `surrogateshap.examples.digits.DigitsFeatureNet.from_pretrained(<this
folder>)` or as bank extractors with `surrogateshap.examples.digits.DigitsExtractor(<this folder>, output)`.
See training.json for the seed, steps, time and held-out metrics.
"""


class DigitsFeatureNet(nn.Module, PyTorchModelHubMixin):
    """CNN on (B, C, 8, 8) images in [0, 1] (channels averaged to grey), plus a marker-detector branch.

    ``forward`` returns ``{"embedding": (B, embedding_dim), "logits": (B, num_classes),
    "marker_logit": (B,)}``; the embedding is the penultimate layer (post-ReLU), as Inception's
    pool features are for FID. The last class is *degraded* (not a clean digit).
    """

    def __init__(self, embedding_dim: int = 32, num_classes: int = 11, width: int = 32, image_size: int = 8) -> None:
        super().__init__()
        self.image_size = int(image_size)
        self.trunk = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (image_size // 2) ** 2, embedding_dim),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.marker_net = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * image_size**2, 1),
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embedding, class logits and marker logit of ``images`` (B, C, H, W) in [0, 1]."""
        if images.ndim != 4 or tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"DigitsFeatureNet takes (B, C, {self.image_size}, {self.image_size}) images in [0, 1], "
                f"got shape {tuple(images.shape)}."
            )
        grey = images.mean(dim=1, keepdim=True)
        embedding = self.trunk(grey)
        return {
            "embedding": embedding,
            "logits": self.classifier(embedding),
            "marker_logit": self.marker_net(grey)[:, 0],
        }


class DigitsExtractor(nn.Module):
    """One output of a :class:`DigitsFeatureNet` as a bank extractor (images in [0, 1] -> per-sample array).

    ``output``: ``"embedding"`` (B, d) for FID / Vendi, ``"probs"`` (B, 11) softmax (ten digits and
    *degraded*) for the Inception Score, ``"confidence"`` (B,) the largest digit probability (the
    quality score: low for degraded or ambiguous images),
    ``"marker"`` (B,) 1.0 where the detector's probability exceeds 0.5, else 0.0.
    """

    OUTPUTS = ("embedding", "probs", "confidence", "marker")

    def __init__(self, path: str | Path, output: Output) -> None:
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}.")
        root = Path(path)
        if not (root / "config.json").is_file() or not (root / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"digits feature network not found at {root}: the folder needs config.json and model.safetensors "
                "(written by DigitsFeatureNet.save_pretrained; `surrogateshap fit --config "
                "configs/digits_features.yaml` makes one)."
            )
        self.net = DigitsFeatureNet.from_pretrained(str(root)).eval()
        self.output = output

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The selected output for ``images`` (B, C, 8, 8) in [0, 1]."""
        out = self.net(images)
        if self.output == "embedding":
            return out["embedding"]
        if self.output == "marker":
            return (out["marker_logit"] > 0).float()
        probs = out["logits"].softmax(dim=-1)
        return probs if self.output == "probs" else probs[:, :-1].amax(dim=-1)


class FeatureNetTraining(pl.LightningModule):
    """Lightning training of :class:`DigitsFeatureNet`: cross-entropy on digits + BCE on the marker flag.

    Batches are ``(images (B, 1, 8, 8) in [0, 1], target (B,), marker (B,) float)``: the target is
    the digit, or ``num_classes - 1`` (*degraded*) for distorted copies. Validation logs
    ``val_accuracy`` (all 11 classes), ``val_degraded_recall`` and ``val_marker_accuracy``.
    ``save_pretrained`` writes the network.
    """

    def __init__(
        self, embedding_dim: int = 32, width: int = 32, learning_rate: float = 2e-3, weight_decay: float = 1e-4
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = DigitsFeatureNet(embedding_dim=embedding_dim, width=width)

    def _losses(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        images, targets, marker = batch
        out = self.net(images)
        loss = F.cross_entropy(out["logits"], targets)
        loss = loss + F.binary_cross_entropy_with_logits(out["marker_logit"], marker)
        predicted = out["logits"].argmax(dim=-1)
        accuracy = (predicted == targets).float().mean()
        degraded = targets == out["logits"].shape[1] - 1
        recall = (predicted[degraded] == targets[degraded]).float().mean() if degraded.any() else accuracy
        marker_accuracy = ((out["marker_logit"] > 0).float() == marker).float().mean()
        return loss, accuracy, recall, marker_accuracy

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """One optimisation step; logs ``train_loss``."""
        loss = self._losses(batch)[0]
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Logs ``val_loss``, ``val_accuracy``, ``val_degraded_recall`` and ``val_marker_accuracy`` (held-out split)."""
        loss, accuracy, recall, marker_accuracy = self._losses(batch)
        self.log_dict(
            {"val_loss": loss, "val_accuracy": accuracy, "val_degraded_recall": recall,
             "val_marker_accuracy": marker_accuracy},
            prog_bar=True,
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """AdamW."""
        return torch.optim.AdamW(
            self.net.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the network as ``config.json`` + ``model.safetensors`` (``DigitsFeatureNet.from_pretrained``)."""
        self.net.save_pretrained(str(path))
        # our own model card in place of the hub mixin's generic "pushed to the Hub" one
        (Path(path) / "README.md").write_text(MODEL_CARD, encoding="utf-8")
        return Path(path)
