"""CleanFIDInception: local TorchScript loading, clean-fid resizing, errors.

The real ``inception-2015-12-05.pt`` is not on this machine; a small scripted module with the
same interface stands in: a ``layers`` submodule mapping normalised 299x299 images to
(B, 2048, 1, 1) pool features, and ``forward(img, return_features=False)`` taking [0, 255]
images of any size (it resizes inside, as the real one does in clean-fid's legacy mode).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.inception_torchscript import InceptionV3W
from cleanfid.resize import build_resizer
from surrogateshap.metrics import CleanFIDInception
from surrogateshap.metrics.extractors import INCEPTION_FILENAME
from torch import Tensor, nn

# the stand-in is written with torch.jit, which torch now flags as deprecated
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class FakeInception(nn.Module):
    """Mimics the interface of clean-fid's TorchScript Inception-v3."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=5, stride=4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128, 2048),
            nn.Unflatten(1, (2048, 1, 1)),
        )
        self.output = nn.Linear(2048, 1008)

    def forward(self, img: Tensor, return_features: bool = False) -> Tensor:
        x = img.to(torch.float32)
        if x.shape[2] != 299 or x.shape[3] != 299:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - 128) / 128
        features = self.layers(x).reshape(-1, 2048)
        if return_features:
            return features
        return torch.softmax(self.output(features), dim=1)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("inception")
    torch.jit.save(torch.jit.script(FakeInception().eval()), str(folder / INCEPTION_FILENAME))
    return folder


def cleanfid_reference_features(folder, images: Tensor) -> Tensor:
    """Features the way clean-fid computes them for generator outputs in "clean" mode."""
    model = InceptionV3W(str(folder), download=False, resize_inside=False).eval()
    resize = build_resizer("clean")
    batch = []
    for img in images:
        img_np = (img * 255).numpy().transpose((1, 2, 0))  # clean-fid's generators give [0, 255]
        batch.append(torch.tensor(resize(img_np).transpose((2, 0, 1))).unsqueeze(0))
    with torch.no_grad():
        return model(torch.cat(batch))


def test_features_match_cleanfids_own_pipeline(weights_dir) -> None:
    images = torch.rand(3, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    extractor = CleanFIDInception(weights_dir / INCEPTION_FILENAME, device="cpu", batch_size=2)
    feats = extractor(images)
    assert feats.shape == (3, 2048) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, cleanfid_reference_features(weights_dir, images), rtol=1e-5, atol=1e-5)
    # the folder works as the path too; uint8 images are the same pictures as [0, 1] floats
    from_folder = CleanFIDInception(weights_dir)
    as_uint8 = (images * 255).round().to(torch.uint8)
    torch.testing.assert_close(from_folder(as_uint8), from_folder(as_uint8.float() / 255), rtol=1e-5, atol=1e-5)
    # grayscale images are repeated to three channels; 299x299 inputs pass through unchanged in size
    gray = torch.rand(2, 1, 299, 299)
    torch.testing.assert_close(extractor(gray), extractor(gray.expand(-1, 3, -1, -1)))
    assert extractor(torch.zeros(0, 3, 32, 32)).shape == (0, 2048)


def test_resizing_is_cleanfids_bicubic(weights_dir) -> None:
    # the clean resize differs from the network's internal bilinear resize: the extractor must not use it
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    extractor = CleanFIDInception(weights_dir)
    scripted = torch.jit.load(str(weights_dir / INCEPTION_FILENAME))
    with torch.no_grad():
        legacy = scripted(images * 255, return_features=True)
    assert not torch.allclose(extractor(images), legacy, atol=1e-4)


def test_missing_weights_error_names_file_key_and_fix(tmp_path) -> None:
    missing = tmp_path / "weights" / INCEPTION_FILENAME
    with pytest.raises(FileNotFoundError) as err:
        CleanFIDInception(missing)
    message = str(err.value)
    assert str(missing) in message and "inception_path" in message and "copy it" in message
    with pytest.raises(FileNotFoundError, match=INCEPTION_FILENAME):
        CleanFIDInception(tmp_path)  # a folder without the file


def test_wrong_torchscript_and_bad_images(tmp_path, weights_dir) -> None:
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(tmp_path / "other.pt"))
    with pytest.raises(ValueError, match="layers"):
        CleanFIDInception(tmp_path / "other.pt")
    extractor = CleanFIDInception(weights_dir)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        extractor(torch.full((1, 3, 8, 8), 2.0))
    with pytest.raises(ValueError, match="shape"):
        extractor(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="uint8 or float"):
        extractor(torch.zeros(1, 3, 8, 8, dtype=torch.int32))
    assert np.isfinite(extractor(torch.rand(3, 8, 8)).numpy()).all()  # a single image without batch dim


def test_class_probabilities_are_the_output_layers_softmax_without_bias(weights_dir) -> None:
    images = torch.rand(3, 3, 32, 32)
    probs = CleanFIDInception(weights_dir, output="probs")(images)
    features = CleanFIDInception(weights_dir)(images)
    weight = torch.jit.load(str(weights_dir / INCEPTION_FILENAME)).output.weight
    assert probs.shape == (3, 1008)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    torch.testing.assert_close(probs, torch.softmax(features @ weight.T, dim=1), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="output must be"):
        CleanFIDInception(weights_dir, output="logits")
