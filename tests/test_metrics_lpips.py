"""Paired LPIPS: the offline scorer (local backbone weights) and the weighted-mean coalition metric."""

from __future__ import annotations

import inspect
import os
import socket

import numpy as np
import pytest
import torch
import torchvision
from surrogateshap.metrics.paired_lpips import ContributorPairedLPIPS, PairedLPIPSScorer
from surrogateshap.metrics.pairwise import ContributorMeanPairwiseDistance

C = 4


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> str:
    """A randomly initialised torchvision AlexNet state dict, saved locally."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet-random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def scorer(alexnet_file) -> PairedLPIPSScorer:
    return PairedLPIPSScorer(alexnet_file, image_size=32, batch_size=4)  # small batches: exercise chunking


def no_network(*args, **kwargs):
    raise AssertionError("the network was touched")


def test_scorer_loads_local_weights_without_network(alexnet_file, monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    scorer = PairedLPIPSScorer(alexnet_file, image_size=64)
    saved = torch.load(alexnet_file, weights_only=True)
    # backbone convolutions come from the local file (AlexNet features 0, 3, 6, 8, 10)
    backbone = scorer.lpips.net.state_dict()
    for conv, slice_ in [(0, 1), (3, 2), (6, 3), (8, 4), (10, 5)]:
        for param in ("weight", "bias"):
            np.testing.assert_array_equal(
                backbone[f"slice{slice_}.{conv}.{param}"].numpy(), saved[f"features.{conv}.{param}"].numpy()
            )
    # the linear layers are the ones shipped inside torchmetrics
    import torchmetrics.functional.image.lpips as tm_lpips

    shipped = torch.load(
        os.path.join(os.path.dirname(inspect.getfile(tm_lpips)), "lpips_models", "alex.pth"),
        map_location="cpu",
        weights_only=True,
    )
    for key, value in shipped.items():
        np.testing.assert_array_equal(scorer.lpips.state_dict()[key].numpy(), value.numpy())
    assert not any(p.requires_grad for p in scorer.parameters())


def test_missing_weights_error_names_file_key_and_remedy(tmp_path):
    missing = tmp_path / "nowhere" / "alexnet.pth"
    with pytest.raises(FileNotFoundError) as info:
        PairedLPIPSScorer(missing)
    msg = str(info.value)
    assert str(missing) in msg and "lpips_backbone_path" in msg
    assert "alexnet-owt-7be5be79.pth" in msg and "copy" in msg
    with pytest.raises(FileNotFoundError, match="lpips_backbone_path"):
        PairedLPIPSScorer(None)


def test_identical_images_score_zero_and_different_images_positive(scorer):
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 32, 32, generator=gen)
    b = torch.rand(3, 3, 32, 32, generator=gen)
    same = scorer(a, a)
    assert same.shape == (3,)
    assert same.abs().max() < 1e-6
    diff = scorer(a, b)
    assert (diff > 0).all()
    # the score is symmetric and batch-independent
    torch.testing.assert_close(scorer(b, a), diff, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(scorer(a[1:2], b[1:2]), diff[1:2], rtol=1e-4, atol=1e-6)


def test_inputs_are_resized_and_uint8_accepted(scorer):
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(3, 3, 40, 40, generator=gen)
    small = torch.nn.functional.interpolate(a, size=(32, 32), mode="bilinear", antialias=True).clamp(0, 1)
    torch.testing.assert_close(scorer(a, small), torch.zeros(3), atol=1e-5, rtol=0)
    a8 = (a * 255).round().to(torch.uint8)
    torch.testing.assert_close(scorer(a8, a8), torch.zeros(3), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        scorer(a * 2, a)
    with pytest.raises(ValueError, match="3, H, W"):
        scorer(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))


def test_paired_lpips_metric_is_the_weighted_mean():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.1, 0.9, size=21)
    ids = np.concatenate([[0], rng.integers(1, C, size=20)])
    ids[1:C] = np.arange(1, C)
    metric = ContributorPairedLPIPS(num_contributors=C)
    assert metric.feature == "paired_lpips" and metric.higher_is_better is False
    metric.update(torch.as_tensor(scores), torch.as_tensor(ids))
    masks = np.array(
        [np.eye(C, dtype=bool)[i] for i in range(C)] + [np.ones(C, bool), [1, 0, 1, 0]], dtype=bool
    )
    weights = rng.uniform(0.5, 3.0, size=C)
    got = metric.compute_coalitions(masks, weights).numpy()
    for k, mask in enumerate(masks):
        per_contrib = {i: scores[ids == i].mean() for i in range(C) if mask[i]}
        total = sum(weights[i] for i in per_contrib)
        expected = sum(weights[i] / total * per_contrib[i] for i in per_contrib)
        np.testing.assert_allclose(got[k], expected, rtol=1e-9)
    np.testing.assert_allclose(float(metric.compute()), scores.mean(), rtol=1e-9)


def test_paired_lpips_soft_membership_merge_and_state_dict():
    rng = np.random.default_rng(4)
    scores = torch.as_tensor(rng.uniform(size=30))
    member = torch.as_tensor(rng.dirichlet(np.ones(C), size=30))
    whole, left, right = (ContributorPairedLPIPS(num_contributors=C) for _ in range(3))
    whole.update(scores, member)
    left.update(scores[:11], member[:11])
    right.update(scores[11:], member[11:])
    left.merge_state(right)
    masks, weights = (
        np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 1]], dtype=bool),
        rng.uniform(1, 2, size=C),
    )
    expected = whole.compute_coalitions(masks, weights)
    torch.testing.assert_close(left.compute_coalitions(masks, weights), expected, rtol=1e-12, atol=0)
    # independent reference: pooled sample weights w_x = sum_i a_i r_ix / count_i
    r = member.numpy()
    for k, mask in enumerate(masks):
        share = np.where(mask, weights, 0) / np.where(mask, weights, 0).sum()
        w = (r * (share / r.sum(0))).sum(1)
        np.testing.assert_allclose(expected[k].item(), float(w @ scores.numpy()), rtol=1e-9)
    restored = ContributorPairedLPIPS(num_contributors=C)
    restored.load_state_dict(whole.state_dict())
    torch.testing.assert_close(restored.compute_coalitions(masks, weights), expected, rtol=1e-12, atol=0)


def test_scorer_feeds_metrics_end_to_end(scorer):
    gen = torch.Generator().manual_seed(5)
    generated = torch.rand(6, 3, 32, 32, generator=gen)
    reference = torch.rand(6, 3, 32, 32, generator=gen)
    ids = torch.tensor([0, 0, 1, 2, 3, 3])
    metric = ContributorPairedLPIPS(num_contributors=C)
    per_sample = scorer(generated, reference)
    metric.update(per_sample, ids)
    np.testing.assert_allclose(float(metric.compute()), float(per_sample.double().mean()), rtol=1e-6)
    # mean pairwise LPIPS over a coalition's images, with the scorer as the distance
    pairwise = ContributorMeanPairwiseDistance(
        feature="image", distance=scorer.pairwise, num_contributors=C, block_size=4
    )
    pairwise.update(generated, ids)
    ii, jj = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    dist = scorer(generated[ii.flatten()], generated[jj.flatten()]).double().reshape(6, 6).numpy()
    assert np.abs(np.diag(dist)).max() < 1e-6
    mask = np.array([[1, 1, 0, 1]], dtype=bool)
    weights = np.array([1.0, 2.0, 1.0, 3.0])
    w = np.array([1 / 12, 1 / 12, 2 / 6, 0.0, 3 / 12, 3 / 12])  # shares 1/6, 2/6, 3/6 over 2, 1, 2 samples
    off = ~np.eye(6, dtype=bool)
    expected = (np.outer(w, w) * dist)[off].sum() / np.outer(w, w)[off].sum()
    np.testing.assert_allclose(pairwise.compute_coalitions(mask, weights).numpy(), [expected], rtol=1e-4)
    # the one-pass embedding reproduces the pairwise LPIPS matrix
    np.testing.assert_allclose(
        scorer.pairwise(generated, generated).double().numpy(), dist, rtol=1e-4, atol=1e-6
    )


def test_other_backbone_and_features_only_state_dict(tmp_path):
    # a SqueezeNet backbone saved as a features-only, DataParallel-prefixed state dict
    features = torchvision.models.squeezenet1_1(weights=None).features.state_dict()
    path = tmp_path / "squeeze-features.pth"
    torch.save({f"module.{k}": v for k, v in features.items()}, path)
    scorer = PairedLPIPSScorer(path, net="squeeze", image_size=32)
    torch.testing.assert_close(scorer.lpips.net.state_dict()["slices.0.0.weight"], features["0.weight"])
    a = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    assert scorer(a, a).abs().max() < 1e-6 and (scorer(a, a.flip(0)) > 0).all()
    with pytest.raises(KeyError, match="state dict of this backbone"):
        PairedLPIPSScorer(path, net="alex")


def test_scorer_follows_a_bf16_network(alexnet_file):
    # a Trainer under precision="bf16-true" converts the scorer's network; float inputs must follow it
    scorer = PairedLPIPSScorer(alexnet_file, image_size=64)
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    full = scorer(a, b)
    half = scorer.to(torch.bfloat16)(a, b)
    torch.testing.assert_close(half.float(), full.float(), rtol=0.05, atol=0.01)
