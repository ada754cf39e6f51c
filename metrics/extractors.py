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


def _checked_images(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` uint8 or [0, 1] float images (one image gains a batch axis, one channel becomes three)."""
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, 3, H, W) or (B, 1, H, W), got {tuple(images.shape)}.")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.dtype == torch.uint8:
        return images
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}.")
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(
            "float images must lie in [0, 1] (got values in "
            f"[{float(images.min()):.3g}, {float(images.max()):.3g}]); convert [-1, 1] outputs with (x + 1) / 2."
        )
    return images


def images_to_uint8_range(images: Tensor) -> Tensor:
    """Float32 ``(B, 3, H, W)`` images in [0, 255] from [0, 1] floats or uint8 images.

    >>> images_to_uint8_range(torch.full((1, 3, 1, 1), 0.5)).flatten()
    tensor([127.5000, 127.5000, 127.5000])
    """
    images = _checked_images(images)
    if images.dtype == torch.uint8:
        return images.to(torch.float32)
    return images.to(torch.float32).clamp(0, 1) * 255


def images_to_unit_range(images: Tensor) -> Tensor:
    """Float32 ``(B, 3, H, W)`` images in [0, 1] from [0, 1] floats or uint8 images.

    >>> images_to_unit_range(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten()
    tensor([1., 1., 1.])
    """
    images = _checked_images(images)
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255
    return images.to(torch.float32).clamp(0, 1)


def clean_resize(images: Tensor, mode: str = "clean") -> Tensor:
    """Resize ``(B, 3, H, W)`` images in [0, 255] to 299x299 with clean-fid's own resizer.

    ``mode="clean"`` is clean-fid's PIL bicubic resize of each float channel (no quantisation),
    exactly as ``cleanfid.fid.get_model_features`` applies it to generator outputs.

    >>> clean_resize(torch.full((1, 3, 8, 8), 128.0)).shape
    torch.Size([1, 3, 299, 299])
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

    >>> CleanFIDInception("weights/inception-2015-12-05.pt")  # nothing is downloaded: the file must be there
    Traceback (most recent call last):
    ...
    FileNotFoundError: Inception weights for FID not found: 'weights/inception-2015-12-05.pt' ...
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


# --- image embeddings from local Hugging Face transformers vision models ---------------------------

#: Config key (relative to the embedding extractor's options) naming the model folder.
EMBEDDING_CONFIG_KEY = "model_path"
#: OpenAI CLIP's pixel statistics (used when a model folder has no ``preprocessor_config.json``).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_KINDS = ("clip", "auto")


def _missing_model_folder(path: Path, key: str, kind: str) -> FileNotFoundError:
    if kind == "clip":
        how = (
            "on a connected machine save one with `CLIPModel.from_pretrained(<hub name, e.g. "
            "openai/clip-vit-large-patch14>).save_pretrained(DIR)` and `CLIPImageProcessor.from_pretrained("
            "<same>).save_pretrained(DIR)`."
        )
    else:
        how = (
            "on a connected machine save a transformers vision model and its image processor with "
            "`AutoModel.from_pretrained(<hub name>).save_pretrained(DIR)` and "
            "`AutoImageProcessor.from_pretrained(<same>).save_pretrained(DIR)` (config.json, the weights, "
            "preprocessor_config.json)."
        )
    return FileNotFoundError(
        f"image model folder not found: '{path}' has no config.json (config key `{key}`). This machine downloads "
        f"nothing: {how} Copy that folder to this path, or set `{key}` to where it is."
    )


def load_clip_vision(path: str | os.PathLike, config_key: str = EMBEDDING_CONFIG_KEY) -> nn.Module:
    """CLIP vision tower with its projection (``CLIPVisionModelWithProjection``) from a local folder.

    The folder may hold a full ``CLIPModel`` or a vision-only model (``save_pretrained``).

    >>> import tempfile
    >>> from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    >>> folder = tempfile.mkdtemp()
    >>> config = CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...                           image_size=32, patch_size=16, projection_dim=4)
    >>> CLIPVisionModelWithProjection(config).save_pretrained(folder)
    >>> type(load_clip_vision(folder)).__name__
    'CLIPVisionModelWithProjection'
    """
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise _missing_model_folder(path, config_key, "clip")
    from transformers import CLIPVisionModelWithProjection
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # a full CLIPModel's text weights are expected to be unused
    try:
        model, info = CLIPVisionModelWithProjection.from_pretrained(
            str(path), output_loading_info=True, local_files_only=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = list(info.get("missing_keys", []))
    if missing:
        raise ValueError(f"CLIP folder '{path}' lacks vision weights: {sorted(missing)[:5]} ...")
    return model.eval()


def _load_auto_vision(path: Path, config_key: str) -> nn.Module:
    """A transformers vision model via ``AutoModel``; a multimodal model (BLIP, CLIP...) gives its ``vision_model``."""
    if not (path / "config.json").is_file():
        raise _missing_model_folder(path, config_key, "auto")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    tower = getattr(model, "vision_model", None)
    return (tower if isinstance(tower, nn.Module) else model).eval()


def _config_image_size(config: object) -> int | None:
    size = getattr(config, "image_size", None)
    if size is None and getattr(config, "vision_config", None) is not None:
        size = getattr(config.vision_config, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = size[0]
    return None if size is None else int(size)


class HFImageEmbedding(nn.Module):
    """Image embeddings ``(B, d)`` float32 from a local Hugging Face ``transformers`` vision model folder.

    Parameters
    ----------
    model_path : folder written by ``save_pretrained`` (``config.json`` and weights, plus the image
        processor's ``preprocessor_config.json`` when available); loaded with ``local_files_only``.
    kind : ``"clip"``: ``CLIPVisionModelWithProjection`` (a full ``CLIPModel`` folder works too) and
        its projected ``image_embeds``; ``"auto"``: ``AutoModel`` (a multimodal model such as BLIP
        contributes its ``vision_model``) and its pooled output, or the mean of its last hidden
        state when it has none.
    device : where the model runs.
    batch_size : images per forward pass.
    normalize : L2-normalise the embeddings.
    config_key : the config key named when the folder is missing.

    Preprocessing: the folder's image processor (``CLIPImageProcessor`` for ``"clip"``,
    ``AutoImageProcessor`` otherwise) when it has ``preprocessor_config.json``; else the shorter
    side is resized (bicubic, antialiased) to the config's ``image_size``, center-cropped and
    normalised with OpenAI CLIP's mean and std.

    >>> import tempfile
    >>> from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    >>> folder = tempfile.mkdtemp()  # a tiny CLIP vision tower saved locally (real ones: a hub model's)
    >>> config = CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
    ...                           image_size=32, patch_size=16, projection_dim=4)
    >>> CLIPVisionModelWithProjection(config).save_pretrained(folder)
    >>> HFImageEmbedding(folder, normalize=True)(torch.rand(2, 3, 40, 40)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        kind: str = "clip",
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        normalize: bool = False,
        *,
        config_key: str = EMBEDDING_CONFIG_KEY,
    ) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
        path = Path(model_path).expanduser()
        self.model_path = path
        self.kind = kind
        self.batch_size = int(batch_size)
        self.normalize = bool(normalize)
        if kind == "clip":
            self.model = load_clip_vision(path, config_key).to(torch.device(device))
        else:
            self.model = _load_auto_vision(path, config_key).to(torch.device(device))
        self.image_size = _config_image_size(self.model.config)
        self.processor = None
        if (path / "preprocessor_config.json").is_file():
            if kind == "clip":
                from transformers import CLIPImageProcessor as Processor
            else:
                from transformers import AutoImageProcessor as Processor
            self.processor = Processor.from_pretrained(str(path), local_files_only=True)
        elif self.image_size is None:
            raise ValueError(
                f"'{path}' has no preprocessor_config.json and its config gives no image_size: save the model's "
                "image processor there too (`AutoImageProcessor.from_pretrained(<hub name>).save_pretrained(DIR)`)."
            )

    @property
    def device(self) -> torch.device:
        """Where the model is (follows ``.to``)."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The model's float dtype (follows ``.to``, e.g. bf16 under ``precision="bf16-true"``)."""
        return next(p.dtype for p in self.model.parameters() if p.is_floating_point())

    def preprocess(self, images: Tensor) -> Tensor:
        """Model pixel values ``(B, 3, S, S)`` float32 for images ``(B, 3, H, W)`` in [0, 1] or uint8."""
        x = images_to_unit_range(images)
        if self.processor is not None:
            return self.processor(images=list(x.cpu()), return_tensors="pt", do_rescale=False)["pixel_values"]
        from torchvision.transforms.v2 import functional as TF

        x = TF.resize(x, [self.image_size], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
        x = TF.center_crop(x, [self.image_size, self.image_size]).clamp(0, 1)
        return TF.normalize(x, list(CLIP_MEAN), list(CLIP_STD))

    def _embed_pixels(self, pixels: Tensor) -> Tensor:
        if self.kind == "clip":
            return self.model(pixel_values=pixels).image_embeds
        out = self.model(pixel_values=pixels)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            hidden = out.last_hidden_state
            pooled = hidden.mean(dim=1) if hidden.ndim == 3 else hidden.flatten(2).mean(dim=2)
        return pooled.flatten(1)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Embeddings ``(B, d)`` float32 (L2-normalised when ``normalize``), on the model's device."""
        pixels = self.preprocess(images)
        device, dtype = self.device, self.dtype
        out = []
        for start in range(0, pixels.shape[0], self.batch_size):
            emb = self._embed_pixels(pixels[start : start + self.batch_size].to(device=device, dtype=dtype)).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1) if self.normalize else emb)
        if not out:
            return torch.zeros(0, self.embed_dim, device=device)
        return torch.cat(out)

    @property
    def embed_dim(self) -> int:
        """d: the projection size (``"clip"``), else the hidden size."""
        config = self.model.config
        if self.kind == "clip":
            return int(config.projection_dim)
        return int(getattr(config, "hidden_size", None) or getattr(config, "hidden_sizes", [0])[-1])
