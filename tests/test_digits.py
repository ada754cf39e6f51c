"""The planted digits setting and the models trained on it (data, planting, training modules, loading)."""

import numpy as np
import pytest
import torch

from surrogateshap.config import load_config
from surrogateshap.examples.digits import DigitsDataModule, DigitsExtractor, DigitsFeatureNet, FeatureNetTraining
from surrogateshap.examples.digits.data import DEGRADED_CLASS
from surrogateshap.examples.digits.demo import default_config_path
from surrogateshap.examples.digits.planting import (
    DigitsContributors,
    DigitsPlanting,
    add_marker,
    corrupt,
    digits_roles,
    load_digits_images,
)
from surrogateshap.generation.backends.ddpm import ClassConditionalDDPM


def test_split_is_reproducible_stratified_and_disjoint():
    a, b = DigitsContributors.build(), DigitsContributors.build()
    assert a.example_ids == b.example_ids
    np.testing.assert_array_equal(a.images, b.images)
    images, digits = load_digits_images()
    assert len(a.example_ids) + len(a.reference_digits) == len(digits)
    held_counts = np.bincount(a.reference_digits, minlength=10)
    all_counts = np.bincount(digits, minlength=10)
    np.testing.assert_allclose(held_counts / all_counts, 0.2, atol=0.01)  # stratified 20 %
    # twins: each digit's training images split in two contributors of (nearly) equal size
    counts = np.bincount(a.contributor_index, minlength=20)
    assert counts.min() > 60 and np.abs(counts[0::2] - counts[1::2]).max() <= 1
    for index in range(20):
        assert set(a.digits[a.contributor_index == index]) == {index // 2}
    other = DigitsContributors.build({"seed": 1})
    assert other.example_ids != a.example_ids


def test_planted_roles_change_exactly_their_contributors_images():
    data = DigitsContributors.build()
    ids = data.contributor_ids
    for index, cid in enumerate(ids):
        rows = data.contributor_index == index
        changed = not np.array_equal(data.images[rows], data.clean_images[rows])
        assert changed == (data.roles[cid] != "clean"), cid
    marker = ids.index("digit2_a")
    assert (data.images[data.contributor_index == marker][:, :2, :2] == 1.0).all()
    inverted = ids.index("digit1_b")
    rows = data.contributor_index == inverted
    np.testing.assert_allclose(data.images[rows], 1.0 - data.clean_images[rows], atol=1e-6)
    assert digits_roles()["digit7_b"] == "corrupted" and digits_roles()["digit0_a"] == "clean"
    registry = data.registry()
    assert registry.contributor_ids == ids
    assert registry.label_counts("digit3_b") == {7: int((data.contributor_index == 7).sum())}


def test_corruptions_and_marker_corners():
    images = load_digits_images()[0][:4]
    rng = np.random.default_rng(0)
    noisy = corrupt(images, "noise", 0.3, rng)
    assert noisy.min() >= 0 and noisy.max() <= 1 and np.abs(noisy - images).mean() > 0.1
    blurred = corrupt(images, "blur", 1.0, rng)
    assert np.abs(np.diff(blurred, axis=2)).mean() < np.abs(np.diff(images, axis=2)).mean()
    np.testing.assert_allclose(blurred.max(axis=(1, 2)), images.max(axis=(1, 2)), rtol=1e-5)
    marked = add_marker(images, 3, "bottom_right")
    assert (marked[:, 5:, 5:] == 1).all() and np.array_equal(marked[:, :5, :], images[:, :5, :])


def test_bad_plantings_name_every_problem():
    with pytest.raises(ValueError) as err:
        DigitsPlanting(corrupted=("digit1_b", "digit9_z"), marker=("digit1_b",), marker_corner="middle")
    text = str(err.value)
    assert "digit9_z" in text and "both corrupted and marker" in text and "middle" in text
    with pytest.raises(ValueError, match="unknown digits planting key"):
        DigitsPlanting.from_config({"corruptoin": "blur"})
    with pytest.raises(ValueError, match="at most 1 for 'invert'"):
        DigitsPlanting(corruption="invert", corruption_strength=2.0)


def test_feature_data_module_teaches_degraded_and_marker():
    module = DigitsDataModule(task="features", batch_size=32)
    module.setup("fit")
    images, targets, marker = module.train_set.tensors
    n = len(targets) // 3
    assert (targets[2 * n :] == DEGRADED_CLASS).all() and (targets[:n] < 10).all()
    assert marker[:n].sum() == 0 and (marker[n : 2 * n] == 1).all() and marker[2 * n :].sum() == 0
    generator = DigitsDataModule(task="generator")
    generator.setup("fit")
    x, labels = generator.train_set.tensors
    assert x.min() >= -1 and x.max() <= 1 and labels.max() == 19


def test_shipped_feature_network_sees_the_planted_roles():
    config = load_config(default_config_path())
    path = config["paths"]["features"]
    data = DigitsContributors.build(config["data"])
    confidence = DigitsExtractor(path, "confidence")
    marker = DigitsExtractor(path, "marker")
    probs = DigitsExtractor(path, "probs")
    by_role = {}
    for index, cid in enumerate(data.contributor_ids):
        batch = torch.from_numpy(data.images[data.contributor_index == index][:, None]).repeat(1, 3, 1, 1)
        by_role.setdefault(data.roles[cid], []).append(
            (confidence(batch).mean().item(), marker(batch).mean().item())
        )
    clean, corrupted, marked = (np.array(by_role[r]) for r in ("clean", "corrupted", "marker"))
    assert corrupted[:, 0].max() < 0.2 < 0.9 < clean[:, 0].min()  # quality sees the corruption
    assert marked[:, 1].min() > 0.9 > 0.1 > max(clean[:, 1].max(), corrupted[:, 1].max())  # detector
    reference = torch.from_numpy(data.reference_images[:, None]).repeat(1, 3, 1, 1)
    accuracy = (probs(reference).argmax(dim=1).numpy() == data.reference_digits).mean()
    assert accuracy > 0.95
    with pytest.raises(FileNotFoundError, match="digits_features.yaml"):
        DigitsExtractor("/nonexistent/features", "embedding")


def test_feature_network_round_trips_through_from_pretrained(tmp_path):
    module = FeatureNetTraining(embedding_dim=8, width=4)
    module.save_pretrained(tmp_path / "net")
    loaded = DigitsFeatureNet.from_pretrained(str(tmp_path / "net"))
    x = torch.rand(3, 3, 8, 8)
    for key, value in module.net(x).items():
        torch.testing.assert_close(loaded(x)[key], value)
    with pytest.raises(ValueError, match="8, 8"):
        loaded(torch.rand(2, 3, 16, 16))


def test_untrained_backend_keeps_the_architecture_with_seeded_fresh_weights():
    path = load_config(default_config_path())["paths"]["ddpm"]
    trained = ClassConditionalDDPM.from_pretrained(path)
    first = ClassConditionalDDPM.untrained(path, init_seed=0)
    again = ClassConditionalDDPM.untrained(path, init_seed=0)
    assert first.unet.config == trained.unet.config
    for (name, a), b in zip(first.unet.state_dict().items(), again.unet.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    weight = "conv_in.weight"
    assert not torch.equal(first.unet.state_dict()[weight], trained.unet.state_dict()[weight])


def test_diffusion_training_step_and_export(tmp_path):
    import lightning.pytorch as pl
    from surrogateshap.callbacks import SavePretrained
    from torch.utils.data import DataLoader, TensorDataset

    from surrogateshap.examples.digits import DiffusionTraining

    torch.manual_seed(0)
    model = DiffusionTraining(num_labels=3, block_out_channels=(8, 16), ema_decay=0.9)
    data = TensorDataset(torch.rand(16, 1, 8, 8) * 2 - 1, torch.randint(0, 3, (16,)))
    trainer = pl.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[SavePretrained(tmp_path / "ddpm")], default_root_dir=tmp_path,
    )
    trainer.fit(model, DataLoader(data, batch_size=8))
    backend = ClassConditionalDDPM.from_pretrained(tmp_path / "ddpm")
    assert backend.num_labels == 3
    torch.testing.assert_close(backend.unet.conv_in.weight, model.ema.module.conv_in.weight)
    assert (tmp_path / "ddpm" / "training.json").is_file()
    # the folder gets the modes the umask gives new files (mkdtemp's 0700 is not kept)
    from surrogateshap.io import current_umask

    mask = current_umask()
    assert (tmp_path / "ddpm").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "ddpm" / "training.json").stat().st_mode & 0o777 == 0o666 & ~mask
    images = backend.generate([0, 2], [torch.Generator().manual_seed(s) for s in (1, 2)], 1.5, 3)
    assert images.shape == (2, 3, 8, 8) and 0 <= images.min() and images.max() <= 1
