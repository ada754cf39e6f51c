"""Pluggable per-image feature extractors for the bank (``extractor(images) -> (B, d)`` float).

Images are float tensors in [0, 1] or uint8 tensors in [0, 255], shape ``(B, 3, H, W)``
(a single channel is repeated to three). Weights are always read from local paths.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from cleanfid.downloads_helper import inception_url
from cleanfid.resize import build_resizer
from torch import Tensor, nn

#: Config key (relative to the FID utility's options) naming the Inception weights file.
INCEPTION_CONFIG_KEY = "inception_path"
INCEPTION_FILENAME = "inception-2015-12-05.pt"


def images_to_uint8_range(images: Tensor) -> Tensor:
    """Float32 ``(B, 3, H, W)`` images in [0, 255] from [0, 1] floats or uint8 images."""
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 3, H, W) or (B, 1, H, W), got {tuple(images.shape)}.")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.dtype == torch.uint8:
        return images.to(torch.float32)
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}.")
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(
            "float images must lie in [0, 1] (got values in "
            f"[{float(images.min()):.3g}, {float(images.max()):.3g}]); convert [-1, 1] outputs with (x + 1) / 2."
        )
    return images.to(torch.float32).clamp(0, 1) * 255


def clean_resize(images: Tensor, mode: str = "clean") -> Tensor:
    """Resize ``(B, 3, H, W)`` images in [0, 255] to 299x299 with clean-fid's own resizer.

    ``mode="clean"`` is clean-fid's PIL bicubic resize of each float channel (no quantisation),
    exactly as ``cleanfid.fid.get_model_features`` applies it to generator outputs.
    """
    resize = build_resizer(mode)
    arrays = images.detach().cpu().numpy().transpose(0, 2, 3, 1)
    out = np.stack([np.asarray(resize(img), dtype=np.float32) for img in arrays])
    return torch.from_numpy(out.transpose(0, 3, 1, 2).copy())


class CleanFIDInception(nn.Module):
    """Clean-fid's TorchScript Inception-v3 (``inception-2015-12-05.pt``): pool features or class probabilities.

    Loaded with ``torch.jit.load`` from a local file; nothing is downloaded. Images are resized
    to 299x299 by clean-fid's "clean" resizer (PIL bicubic), then normalised and passed through
    the network's ``layers`` as ``cleanfid.inception_torchscript.InceptionV3W`` does in clean mode.

    Parameters
    ----------
    weights_path : the TorchScript file, or a folder holding ``inception-2015-12-05.pt``.
    device : where the network runs.
    batch_size : images per forward pass.
    output : ``"features"`` (2048-d pool features, for FID) or ``"probs"`` (the 1008-way softmax of
        the network's ``output`` layer applied to those features *without its bias*, as the
        original TensorFlow Inception Score and StyleGAN's port of it (``no_output_bias=True``)
        compute it; for the Inception Score).

    The ``"probs"`` path follows the file's documented layout (a ``layers`` trunk and an
    ``output`` linear layer); it is tested against a stand-in with that layout, not against the
    real file, which is not on this machine.
    """

    feature_dim = 2048
    OUTPUTS = ("features", "probs")

    def __init__(
        self,
        weights_path: str | os.PathLike,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        output: str = "features",
    ) -> None:
        super().__init__()
        path = Path(weights_path).expanduser()
        if path.is_dir():
            path = path / INCEPTION_FILENAME
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception weights for FID not found: '{path}' (config key `{INCEPTION_CONFIG_KEY}`). This "
                f"machine downloads nothing: on a connected machine fetch clean-fid's TorchScript file "
                f"{INCEPTION_FILENAME} (clean-fid's source names its address: {inception_url}), copy it to "
                f"that path, or set `{INCEPTION_CONFIG_KEY}` to where it is."
            )
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {self.OUTPUTS}, got {output!r}.")
        self.weights_path = path
        self.batch_size = int(batch_size)
        self.output = output
        with warnings.catch_warnings():  # clean-fid's file is TorchScript, whatever torch thinks of it
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
            self.base = torch.jit.load(str(path), map_location=torch.device(device)).eval()
        if not hasattr(self.base, "layers"):
            raise ValueError(
                f"'{path}' is a TorchScript module without a `layers` submodule; it is not clean-fid's "
                f"{INCEPTION_FILENAME}."
            )
        if output == "probs" and not hasattr(self.base, "output"):
            raise ValueError(
                f"'{path}' has no `output` layer, so it cannot give class probabilities; use clean-fid's "
                f"{INCEPTION_FILENAME} or output='features'."
            )

    @property
    def device(self) -> torch.device:
        """Where the network is (follows ``.to``)."""
        for tensor in self.base.parameters():
            return tensor.device
        for tensor in self.base.buffers():
            return tensor.device
        return torch.device("cpu")

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Pool features ``(B, 2048)`` or class probabilities ``(B, 1008)``, float32 on CPU."""
        images = images_to_uint8_range(images)
        if images.shape[0] == 0:
            return torch.zeros(0, self.feature_dim if self.output == "features" else self.base.output.weight.shape[0])
        pixels = clean_resize(images)
        feats = []
        for start in range(0, pixels.shape[0], self.batch_size):
            x = pixels[start : start + self.batch_size].to(self.device)
            x = (x - 128) / 128
            pooled = self.base.layers(x).reshape(x.shape[0], self.feature_dim)
            if self.output == "probs":
                weight = self.base.output.weight
                pooled = torch.softmax(pooled @ weight.to(pooled.dtype).T, dim=1)
            feats.append(pooled.float().cpu())
        return torch.cat(feats)
