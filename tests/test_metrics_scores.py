"""Inception Score, rate and aesthetic metrics: coalition values equal direct pooled formulas;
the aesthetic scorer loads a tiny random CLIP and head through its real loading code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
from surrogateshap.metrics import (
    AestheticScorer,
    ContributorAestheticScore,
    ContributorInceptionScore,
    ContributorRate,
    LaionAestheticMLP,
    load_aesthetic_head,
)

RTOL = 1e-6


def pooled_weights(member: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sample weights of a coalition's mixture: w_x = sum_i a_i r_ix / count_i, a_i = n_i / n_S."""
    share = np.where(mask, weights, 0.0) / weights[mask].sum()
    return member @ (share / member.sum(axis=0))


def one_hot(ids: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((ids.shape[0], c))
    out[np.arange(ids.shape[0]), ids] = 1.0
    return out


def random_masks(rng: np.random.Generator, c: int, k: int) -> np.ndarray:
    masks = rng.random((k, c)) < 0.5
    masks[masks.sum(axis=1) == 0, 0] = True
    return np.concatenate([np.eye(c, dtype=bool), np.ones((1, c), dtype=bool), masks])


def is_direct(p: np.ndarray, w: np.ndarray) -> float:
    """exp(sum_x w_x KL(p_x || pbar)), pbar = sum_x w_x p_x, with scipy's KL (independent formula)."""
    keep = w > 0
    pbar = np.average(p[keep], axis=0, weights=w[keep])
    kl = np.array([scipy.stats.entropy(px, pbar) for px in p[keep]])
    return float(np.exp(np.average(kl, weights=w[keep])))


def random_probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    p = rng.dirichlet(np.full(k, 0.3), size=n)
    p[rng.random((n, k)) < 0.2] = 0.0  # exact zeros: 0 log 0 = 0
    p[:, 0] += 1e-3
    return p / p.sum(axis=1, keepdims=True)


# --- Inception Score ------------------------------------------------------------------------


def test_inception_score_hard_membership_unequal_weights() -> None:
    rng = np.random.default_rng(0)
    sizes, k = [30, 1, 12, 50, 7], 10
    ids = rng.permutation(np.concatenate([np.full(n, i) for i, n in enumerate(sizes)]))
    p = random_probs(rng, len(ids), k)
    metric = ContributorInceptionScore(num_contributors=len(sizes))
    for part in np.array_split(np.arange(len(ids)), 3):
        metric.update(torch.from_numpy(p[part]), torch.from_numpy(ids[part]))
    masks = random_masks(rng, len(sizes), 10)
    for weights in (rng.uniform(1, 50, len(sizes)), np.array(sizes, float)):
        got = metric.compute_coalitions(masks, weights).numpy()
        want = [is_direct(p, pooled_weights(one_hot(ids, len(sizes)), m, weights)) for m in masks]
        np.testing.assert_allclose(got, want, rtol=RTOL)
    # a one-sample coalition has IS 1
    assert float(metric.compute_coalitions(np.eye(5, dtype=bool)[[1]], np.ones(5))[0]) == pytest.approx(1.0)


def test_inception_score_soft_membership_and_logits() -> None:
    rng = np.random.default_rng(1)
    n, c, k = 60, 4, 7
    logits = rng.normal(size=(n, k)) * 3
    p = scipy.special.softmax(logits, axis=1)
    member = rng.dirichlet(np.full(c, 0.5), size=n)
    metric = ContributorInceptionScore(from_logits=True, num_classes=k, num_contributors=c)
    metric.update(torch.from_numpy(logits).float(), torch.from_numpy(member))
    p32 = scipy.special.softmax(logits.astype(np.float32).astype(np.float64), axis=1)
    masks = random_masks(rng, c, 6)
    weights = rng.uniform(1, 5, c)
    got = metric.compute_coalitions(masks, weights).numpy()
    np.testing.assert_allclose(got, [is_direct(p32, pooled_weights(member, m, weights)) for m in masks], rtol=RTOL)
    assert float(metric.compute()) == pytest.approx(is_direct(p, np.full(n, 1 / n)), rel=1e-5)


def test_inception_score_compute_is_the_unweighted_pooled_score() -> None:
    rng = np.random.default_rng(2)
    ids = np.repeat(np.arange(3), [5, 20, 9])
    p = random_probs(rng, len(ids), 6)
    metric = ContributorInceptionScore(num_contributors=3)
    metric.update(torch.from_numpy(p), torch.from_numpy(ids))
    assert float(metric.compute()) == pytest.approx(is_direct(p, np.full(len(ids), 1 / len(ids))), rel=RTOL)


def test_inception_score_distributed_and_state_dict() -> None:
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 4, 80)
    ids[:4] = np.arange(4)
    p = random_probs(rng, 80, 5)
    whole = ContributorInceptionScore(num_classes=5, num_contributors=4)
    whole.update(torch.from_numpy(p), torch.from_numpy(ids))
    halves = [ContributorInceptionScore(num_classes=5, num_contributors=4) for _ in range(2)]
    halves[0].update(torch.from_numpy(p[:37]), torch.from_numpy(ids[:37]))
    halves[1].update(torch.from_numpy(p[37:]), torch.from_numpy(ids[37:]))
    masks = random_masks(rng, 4, 5)
    want = whole.compute_coalitions(masks, np.ones(4))
    summed = ContributorInceptionScore(num_classes=5, num_contributors=4)
    for name in summed._defaults:
        setattr(summed, name, getattr(halves[0], name) + getattr(halves[1], name))
    torch.testing.assert_close(summed.compute_coalitions(masks, np.ones(4)), want)
    halves[0].merge_state(halves[1])
    torch.testing.assert_close(halves[0].compute_coalitions(masks, np.ones(4)), want)
    # state_dict round trip, also into a metric that knows neither K nor C yet
    for fresh in (ContributorInceptionScore(num_classes=5, num_contributors=4), ContributorInceptionScore()):
        fresh.load_state_dict(whole.state_dict())
        torch.testing.assert_close(fresh.compute_coalitions(masks, np.ones(4)), want)


def test_inception_score_bad_inputs() -> None:
    metric = ContributorInceptionScore(num_classes=3, num_contributors=2)
    ids = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="sum"):
        metric.update(torch.tensor([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]), ids)
    with pytest.raises(ValueError, match="non-negative"):
        metric.update(torch.tensor([[1.5, -0.5, 0.0], [1.0, 0.0, 0.0]]), ids)
    with pytest.raises(ValueError, match="3 classes"):
        metric.update(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), ids)
    with pytest.raises(ValueError, match=r"\(N, K >= 2\)"):
        metric.update(torch.tensor([0.5, 0.5]), ids)
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.tensor([[float("nan"), 0.5, 0.5], [1.0, 0.0, 0.0]]), ids)
    with pytest.raises(ValueError, match="no samples"):
        metric.compute_coalitions(np.array([[True, False]]), np.ones(2))
    with pytest.raises(ValueError, match="num_classes"):
        ContributorInceptionScore(num_classes=1)


# --- rate and aesthetic (weighted means) ----------------------------------------------------


@pytest.mark.parametrize("metric_cls", [ContributorRate, ContributorAestheticScore])
def test_weighted_mean_metrics(metric_cls) -> None:
    rng = np.random.default_rng(4)
    c = 5
    ids = rng.integers(0, c, 70)
    ids[:c] = np.arange(c)
    ids[ids == 3] = 2
    ids[0] = 3  # contributor 3 has one sample
    member = one_hot(ids, c)
    member[-10:] = rng.dirichlet(np.ones(c), size=10)  # and some samples are shared
    scores = (rng.random(70) < 0.3) if metric_cls is ContributorRate else rng.normal(5, 1, 70)
    metric = metric_cls(num_contributors=c)
    metric.update(torch.from_numpy(scores[:30]), torch.from_numpy(member[:30]))
    metric.update(torch.from_numpy(scores[30:, None].astype(np.float32)), torch.from_numpy(member[30:]))
    masks = random_masks(rng, c, 8)
    weights = rng.uniform(1, 9, c)
    got = metric.compute_coalitions(masks, weights).numpy()
    want = [np.average(scores.astype(np.float32), weights=pooled_weights(member, m, weights)) for m in masks]
    np.testing.assert_allclose(got, want, rtol=RTOL)
    assert float(metric.compute()) == pytest.approx(np.mean(scores.astype(np.float32)), rel=RTOL)
    fresh = metric_cls()
    fresh.load_state_dict(metric.state_dict())
    torch.testing.assert_close(fresh.compute_coalitions(masks, weights), torch.from_numpy(got))
    with pytest.raises(ValueError, match="one score per sample"):
        metric.update(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.tensor([float("inf")]), torch.zeros(1, dtype=torch.long))


def test_rate_direction_and_feature_names() -> None:
    assert ContributorRate().higher_is_better is False
    assert ContributorRate(higher_is_better=True).higher_is_better is True
    assert ContributorRate().feature == "marker"
    assert ContributorAestheticScore.higher_is_better is True
    assert ContributorAestheticScore().feature == "aesthetic"
    assert ContributorInceptionScore().feature == "probs"
    assert ContributorInceptionScore.higher_is_better is True


# --- aesthetic scorer: tiny random CLIP + head, saved and loaded through the real code ---------


def _tiny_clip_folder(path, full: bool, processor: bool):
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPTextConfig,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(0)
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=24,
    )
    if full:
        text = CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=4,
            vocab_size=64,
            projection_dim=24,
        )
        model = CLIPModel(
            CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=24)
        ).eval()
    else:
        model = CLIPVisionModelWithProjection(vision).eval()
    model.save_pretrained(path)
    if processor:
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return model


def _image_embeds(model, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if hasattr(model, "visual_projection") and hasattr(model, "text_model"):
            out = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        else:
            out = model(pixel_values=pixels).image_embeds
    return torch.nn.functional.normalize(out, dim=-1)


@pytest.mark.parametrize("full,processor,head_ext", [(True, True, ".pth"), (False, False, ".safetensors")])
def test_aesthetic_scorer_loads_local_clip_and_head(tmp_path, full, processor, head_ext) -> None:
    clip = _tiny_clip_folder(tmp_path / "clip", full=full, processor=processor)
    head = LaionAestheticMLP(24).eval()
    head_file = tmp_path / f"head{head_ext}"
    if head_ext == ".safetensors":
        from safetensors.torch import save_file

        save_file(head.state_dict(), str(head_file))
    else:
        torch.save(head.state_dict(), head_file)
    scorer = AestheticScorer(tmp_path / "clip", head_file)
    rng = torch.Generator().manual_seed(1)
    images = torch.rand(5, 3, 40, 48, generator=rng)
    scores = scorer(images)
    assert scores.shape == (5,) and scores.dtype == torch.float32
    pixels = scorer.preprocess(images)
    assert pixels.shape == (5, 3, 32, 32)
    expected = head(_image_embeds(clip, pixels))[:, 0]
    torch.testing.assert_close(scores, expected.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scorer.embed(images).norm(dim=1), torch.ones(5))
    # at the model's own size preprocessing is only CLIP's normalisation, with or without a processor file
    square = images[:, :, :32, :32]
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    torch.testing.assert_close(scorer.preprocess(square), (square - mean) / std, rtol=1e-4, atol=1e-4)
    # uint8 images are the same pictures
    as_uint8 = (images * 255).round().to(torch.uint8)
    torch.testing.assert_close(scorer(as_uint8), scorer(as_uint8.float() / 255))
    # the scores feed the coalition metric
    metric = ContributorAestheticScore(num_contributors=2)
    metric.update(scores, torch.tensor([0, 0, 1, 1, 1]))
    assert float(metric.compute()) == pytest.approx(float(scores.double().mean()), rel=1e-6)


def test_aesthetic_linear_head_and_bad_heads(tmp_path) -> None:
    linear = torch.nn.Linear(24, 1)
    torch.save(linear.state_dict(), tmp_path / "linear.pth")
    head = load_aesthetic_head(tmp_path / "linear.pth", 24)
    x = torch.randn(3, 24)
    torch.testing.assert_close(head(x), linear(x))
    torch.save(LaionAestheticMLP(16).state_dict(), tmp_path / "mlp16.pth")
    with pytest.raises(ValueError, match="16-d"):
        load_aesthetic_head(tmp_path / "mlp16.pth", 24)
    torch.save({"foo.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="neither"):
        load_aesthetic_head(tmp_path / "other.pth", 24)


def test_aesthetic_missing_files_name_file_key_and_fix(tmp_path) -> None:
    head_file = tmp_path / "sac_logos_ava.pth"
    with pytest.raises(FileNotFoundError) as err:
        AestheticScorer(tmp_path / "no_clip_here", head_file)
    message = str(err.value)
    assert str(tmp_path / "no_clip_here") in message and "clip_path" in message and "save_pretrained" in message
    _tiny_clip_folder(tmp_path / "clip", full=False, processor=False)
    with pytest.raises(FileNotFoundError) as err:
        AestheticScorer(tmp_path / "clip", head_file)
    message = str(err.value)
    assert str(head_file) in message and "head_path" in message and "Copy it" in message


def test_rejected_batch_leaves_the_metric_untouched() -> None:
    metric = ContributorInceptionScore(num_classes=3, num_contributors=2)
    metric.update(torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]), torch.tensor([0, 1]))
    before = {k: v.clone() for k, v in metric.metric_state.items()}
    with pytest.raises(ValueError):
        metric.update(torch.tensor([[0.5, 0.5, 0.5]]), torch.tensor([0]))
    for key, value in metric.metric_state.items():
        torch.testing.assert_close(value, before[key])


# --- correlation (the spurious-correlation audit) -------------------------------------------------


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """np.cov with aweights (independent formula): the weighted Pearson correlation, 0 without variance."""
    cov = np.cov(np.stack([x, y]), aweights=w, ddof=0)
    if cov[0, 0] <= 1e-12 or cov[1, 1] <= 1e-12:
        return 0.0
    return float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]))


@pytest.mark.parametrize("soft", [False, True])
def test_correlation_equals_the_pooled_weighted_pearson(soft) -> None:
    from surrogateshap.metrics import ContributorCorrelation

    rng = np.random.default_rng(3)
    n, c = 90, 5
    ids = rng.integers(0, c, n)
    member = rng.dirichlet(np.full(c, 0.5), size=n) if soft else one_hot(ids, c)
    marker = (rng.random(n) < 0.3).astype(float)
    subject = np.clip(0.6 * marker + 0.4 * rng.random(n), 0, 1)  # correlated with the marker
    metric = ContributorCorrelation(feature="pair", num_contributors=c)
    for part in np.array_split(np.arange(n), 4):
        metric.update(torch.from_numpy(np.stack([marker, subject], 1)[part]), torch.from_numpy(member[part]))
    masks = random_masks(rng, c, 12)
    weights = rng.uniform(1, 20, c)
    got = metric.compute_coalitions(masks, weights).numpy()
    want = [weighted_pearson(marker, subject, pooled_weights(member, m, weights)) for m in masks]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert got[-13] > 0.5  # the full coalition sees the planted association
    assert metric.higher_is_better is False


def test_correlation_of_a_constant_quantity_is_zero_and_bad_shapes_are_refused() -> None:
    from surrogateshap.metrics import ContributorCorrelation

    metric = ContributorCorrelation(feature="pair", num_contributors=2)
    metric.update(torch.tensor([[0.0, 0.2], [0.0, 0.9], [1.0, 0.5]]), torch.tensor([0, 0, 1]))
    values = metric.compute_coalitions(np.array([[1, 0], [0, 1], [1, 1]], bool), np.ones(2)).numpy()
    assert values[0] == 0.0 and values[1] == 0.0 and values[2] != 0.0
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        metric.update(torch.ones(3), torch.tensor([0, 0, 1]))
