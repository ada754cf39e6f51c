"""Paired LPIPS (fashion fidelity): per-sample LPIPS to the source training image, weighted mean.

:class:`PairedLPIPSScorer` scores each generated image against the training image whose
caption produced its prompt (LPIPS AlexNet, both resized to 256x256). It uses torchmetrics'
LPIPS network: the linear-layer weights ship inside torchmetrics, and the torchvision
backbone is built without weights (no download) and then loaded from a local state-dict
file (config key ``lpips_backbone_path``).

:class:`ContributorPairedLPIPS` keeps per-contributor sums of those scores; a coalition's
value is their mixture-weighted mean (lower is better).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .mean import ContributorMean

#: torchvision architecture and ImageNet weights file behind each LPIPS backbone name
BACKBONES = {
    "alex": ("alexnet", "AlexNet_Weights.IMAGENET1K_V1", "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "VGG16_Weights.IMAGENET1K_V1", "vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights.IMAGENET1K_V1", "squeezenet1_1-b8a52dc0.pth"),
}


def _missing_weights_error(path: str | Path | None, net: str) -> FileNotFoundError:
    arch, weights, filename = BACKBONES[net]
    where = f"at {str(path)!r}" if path is not None else "(no path given)"
    return FileNotFoundError(
        f"LPIPS backbone weights not found {where}. Set the config key `lpips_backbone_path` to a local "
        f"torchvision {arch} state dict ({filename}, torchvision.models.{weights}). Nothing is downloaded "
        f'at run time: on a machine with internet run `python -c "import torchvision; '
        f"torchvision.models.{arch}(weights='IMAGENET1K_V1')\"`, then copy "
        f"~/.cache/torch/hub/checkpoints/{filename} to this machine and point `lpips_backbone_path` at it."
    )


def _backbone_state_dict(backbone: nn.Module, source: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map a torchvision model state dict (``features.<i>.*``) onto torchmetrics' LPIPS slices."""
    source = {k.removeprefix("module."): v for k, v in source.items()}
    has_features = any(k.startswith("features.") for k in source)
    mapped = {}
    for key in backbone.state_dict():
        parts = key.split(".")
        # Alexnet / Vgg16: slice<s>.<i>.<param>;  SqueezeNet: slices.<s>.<i>.<param...>
        rest = parts[2:] if parts[0] == "slices" else parts[1:]
        src = ".".join(rest)
        src = f"features.{src}" if has_features else src
        if src not in source:
            raise KeyError(
                f"backbone weights file lacks {src!r}: is it a torchvision state dict of this backbone?"
            )
        mapped[key] = source[src]
    return mapped


class PairedLPIPSScorer(nn.Module):
    """Per-sample LPIPS between generated images and their paired training images (offline weights).

    Parameters
    ----------
    backbone_weights_path : local torchvision state dict of the backbone (config key
        ``lpips_backbone_path``), e.g. ``alexnet-owt-7be5be79.pth``.
    net : LPIPS backbone, ``"alex"`` (the paper's), ``"vgg"`` or ``"squeeze"``.
    image_size : both images are resized (bilinear, antialiased) to this square size; None keeps them.
    normalize : inputs are in ``[0, 1]`` (True) or ``[-1, 1]`` (False); uint8 images are divided by 255.
    batch_size : pairs per forward pass.

    >>> import tempfile
    >>> import torchvision
    >>> weights = Path(tempfile.mkdtemp()) / "alexnet.pth"  # real use: torchvision's pretrained AlexNet file
    >>> torch.save(torchvision.models.alexnet().state_dict(), weights)
    >>> scorer = PairedLPIPSScorer(weights, image_size=64)
    >>> scorer(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape  # one LPIPS per pair
    torch.Size([2])
    >>> scorer.pairwise(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64)).shape  # every pair
    torch.Size([2, 3])
    """

    def __init__(
        self,
        backbone_weights_path: str | Path | None,
        net: str = "alex",
        image_size: int | None = 256,
        normalize: bool = True,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        if net not in BACKBONES:
            raise ValueError(f"net must be one of {sorted(BACKBONES)}, got {net!r}.")
        if backbone_weights_path is None or not Path(backbone_weights_path).is_file():
            raise _missing_weights_error(backbone_weights_path, net)
        # pretrained=True loads the linear layers shipped with torchmetrics; pnet_rand=True builds the
        # torchvision backbone with weights=None (no download); its weights come from the local file.
        self.lpips = _NoTrainLpips(net=net, pretrained=True, pnet_rand=True)
        state = torch.load(Path(backbone_weights_path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{backbone_weights_path} does not hold a state dict.")
        self.lpips.net.load_state_dict(_backbone_state_dict(self.lpips.net, state), strict=True)
        self.lpips.eval()
        for p in self.lpips.parameters():
            p.requires_grad_(False)
        self.net_type = net
        # the squared-distance form of `embed` needs non-negative linear weights (true of the shipped ones)
        self._embeddable = all(bool((lin.model[-1].weight >= 0).all()) for lin in self.lpips.lins)
        self.image_size = image_size
        self.normalize = normalize
        self.batch_size = int(batch_size)

    def _prepare(self, images: Tensor) -> Tensor:
        images = torch.as_tensor(images)
        if images.dtype == torch.uint8:
            images = images.float() / 255.0 if self.normalize else images.float() / 127.5 - 1.0
        param = next(self.lpips.parameters())
        images = images.to(device=param.device, dtype=torch.float32)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(images.shape)}.")
        lo, hi = (0.0, 1.0) if self.normalize else (-1.0, 1.0)
        if images.numel() and (images.min() < lo or images.max() > hi):
            raise ValueError(f"float images must lie in [{lo:g}, {hi:g}] (normalize={self.normalize}).")
        if self.image_size is not None and tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            images = nn.functional.interpolate(images, size=size, mode="bilinear", antialias=True)
            images = images.clamp(lo, hi)  # antialiasing may overshoot the range slightly
        # resized in float32 (antialiased resizing has no bf16 CPU kernel), then in the network's dtype
        # (a Trainer under precision="bf16-true" converts the network)
        return images.to(param.dtype)

    @torch.no_grad()
    def forward(self, generated: Tensor, reference: Tensor) -> Tensor:
        """LPIPS of each pair ``(generated[n], reference[n])``: a float tensor of shape (N,)."""
        from torchmetrics.functional.image.lpips import _lpips_update

        if len(generated) != len(reference):
            raise ValueError(f"got {len(generated)} generated but {len(reference)} reference images.")
        scores = []
        for i in range(0, len(generated), self.batch_size):
            a = self._prepare(generated[i : i + self.batch_size])
            b = self._prepare(reference[i : i + self.batch_size])
            scores.append(_lpips_update(a, b, self.lpips, self.normalize).reshape(-1))
        if not scores:
            return torch.zeros(0)
        return torch.cat(scores)

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """Flat LPIPS features ``(N, D)`` whose squared Euclidean distances are the LPIPS distances.

        LPIPS is ``sum_l mean_hw sum_c w_lc (f_l(x) - f_l(y))^2`` on unit-normalised layer
        features ``f_l`` with non-negative linear weights ``w_l``, i.e. the squared distance
        between the concatenated ``sqrt(w_lc / (H_l W_l)) f_l``.
        """
        from torchmetrics.functional.image.lpips import _normalize_tensor, _resize_tensor

        lp = self.lpips
        out = []
        for i in range(0, len(images), self.batch_size):
            x = self._prepare(images[i : i + self.batch_size])
            x = lp.scaling_layer(2 * x - 1 if self.normalize else x)
            if lp.resize is not None:
                x = _resize_tensor(x, size=lp.resize)
            parts = []
            for feat, lin in zip(lp.net(x), lp.lins, strict=True):
                weight = lin.model[-1].weight.reshape(1, -1, 1, 1)
                scale = (weight / (feat.shape[2] * feat.shape[3])).sqrt()
                parts.append((_normalize_tensor(feat) * scale).flatten(1))
            out.append(torch.cat(parts, dim=1))
        return torch.cat(out) if out else torch.zeros(0, 0)

    @torch.no_grad()
    def pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        """LPIPS distance matrix ``(len(a), len(b))``, usable by :class:`ContributorMeanPairwiseDistance`.

        Each image goes through the network once (see :meth:`embed`), not once per pair.
        """
        if not self._embeddable:
            rows = [self(x.unsqueeze(0).expand(len(b), *x.shape), b) for x in a]
            return torch.stack(rows) if rows else torch.zeros(0, len(b))
        ea, eb = self.embed(a), self.embed(b)
        return torch.cdist(ea, eb, compute_mode="donot_use_mm_for_euclid_dist").square()


class ContributorPairedLPIPS(ContributorMean):
    """Mixture-weighted mean of per-sample paired LPIPS scores; lower is better.

    ``update(scores, contributors)`` takes the per-sample scores ``(N,)`` of
    :class:`PairedLPIPSScorer`; per contributor the state is the membership-weighted score sum.

    >>> metric = ContributorPairedLPIPS(num_contributors=2)
    >>> metric.update(torch.tensor([0.2, 0.4]), torch.tensor([0, 1]))
    >>> metric.compute(), metric.higher_is_better
    (tensor(0.3000, dtype=torch.float64), False)
    """

    higher_is_better = False

    def __init__(
        self, feature: str = "paired_lpips", num_contributors: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(feature=feature, num_contributors=num_contributors, **kwargs)
