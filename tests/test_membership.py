"""Soft membership: units of shared conditions, responsibility-weighted coalitions, the classifier."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from surrogateshap.metrics import ContributorFID, ContributorInceptionScore, ContributorMean, ContributorVendiScore

from surrogateshap import ContributorBank, ProxyGame, ResponsibilityModel, SoftMembership
from surrogateshap.contributors import ContributorRegistry
from surrogateshap.membership import condition_units


def registry(shared: bool, scale: int = 1) -> ContributorRegistry:
    """Five contributors; with ``shared``, c1/c2 share label 1 and c3/c4 share labels 3 and 4."""
    labels = {"c0": [0], "c1": [1], "c2": [2], "c3": [3, 4], "c4": [5]}
    if shared:
        labels = {"c0": [0], "c1": [1], "c2": [1], "c3": [3, 4], "c4": [3, 4]}
    sizes = {c: n * scale for c, n in {"c0": 30, "c1": 50, "c2": 20, "c3": 40, "c4": 60}.items()}
    rows = [
        {"example_id": f"{c}_{k}", "contributor": c, "label": labels[c][k % len(labels[c])]}
        for c in labels
        for k in range(sizes[c])
    ]
    return ContributorRegistry.from_rows(rows)


def unit_bank(units, m: int = 40, dim: int = 3, seed: int = 0) -> ContributorBank:
    rng = np.random.default_rng(seed)
    ids = np.repeat(units.unit_ids, m)
    feats = rng.normal(size=(ids.size, dim)) + np.repeat(np.arange(len(units.unit_ids)), m)[:, None] * 0.3
    score = rng.uniform(size=ids.size)
    probs = rng.dirichlet(np.ones(6), size=ids.size)
    return ContributorBank({"f": feats, "score": score, "p": probs}, ids, units.registry.n_examples)


def random_responsibility(units, unit_index, seed=0):
    rng = np.random.default_rng(seed)
    resp = np.zeros((unit_index.size, len(units.contributor_ids)))
    for row, u in enumerate(unit_index):
        holders = units.holders(u)
        resp[row, holders] = rng.dirichlet(np.ones(holders.size))
    return resp


def masks(k: int, n: int, seed: int = 1) -> np.ndarray:
    out = np.random.default_rng(seed).random((k, n)) < 0.5
    out[~out.any(axis=1), 0] = True
    return out


def test_units_without_sharing_are_the_contributors():
    units = condition_units(registry(shared=False))
    assert units.unit_ids == units.contributor_ids == ["c0", "c1", "c2", "c3", "c4"]
    assert not units.shared
    np.testing.assert_array_equal(units.counts, np.diag([30, 50, 20, 40, 60]))
    assert units.registry.n_examples == registry(False).n_examples


def test_shared_conditions_form_one_unit_per_holder_set():
    units = condition_units(registry(shared=True))
    assert units.unit_ids == ["c0", "label:1", "label:3+4"]
    assert units.shared
    np.testing.assert_array_equal(units.holders(1), [1, 2])
    np.testing.assert_array_equal(units.counts[:, 2], [0, 0, 0, 40, 60])
    assert units.registry.label_counts("label:3+4") == {3: 50, 4: 50}


def fid_metric(seed=3):
    ref = np.random.default_rng(seed).normal(size=(500, 3))
    return ContributorFID("f", reference=ref)


def make_metrics():
    return {
        "mean": ContributorMean("score"),
        "fid": fid_metric(),
        "is": ContributorInceptionScore("p"),
        "vendi": ContributorVendiScore("f"),
    }


@pytest.mark.parametrize("name", ["mean", "fid", "is", "vendi"])
def test_soft_membership_reduces_exactly_to_the_plain_proxy(name):
    units = condition_units(registry(shared=False))
    bank = unit_bank(units)
    plain = ProxyGame(bank, make_metrics()[name], v_empty=0.0)
    soft = ProxyGame(
        bank, make_metrics()[name], v_empty=0.0, membership=SoftMembership.shares(units, bank.contributor_index)
    )
    m = masks(64, 5)
    np.testing.assert_allclose(soft(m), plain(m), rtol=1e-10, atol=1e-12)


def direct_weights(units, unit_index, resp, mask):
    """The issue's formula, sample by sample: pi_S(u) rho_S(x) / sum_{x' in u} rho_S(x')."""
    n_su = units.counts[mask].sum(axis=0)
    pi = n_su / n_su.sum()
    rho = resp[:, mask].sum(axis=1)
    w = np.zeros(len(unit_index))
    for u in range(len(units.unit_ids)):
        rows = unit_index == u
        if n_su[u] > 0:
            w[rows] = pi[u] * rho[rows] / rho[rows].sum()
    return w


def frechet(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_shared_units_match_the_direct_weighted_formula():
    units = condition_units(registry(shared=True))
    bank = unit_bank(units)
    resp = random_responsibility(units, bank.contributor_index)
    soft = SoftMembership(units.contributor_ids, units.unit_ids, units.counts, bank.contributor_index, resp)
    m = masks(40, 5, seed=2)
    mean_game = ProxyGame(bank, ContributorMean("score"), v_empty=0.0, membership=soft)
    fid_game = ProxyGame(bank, fid_metric(), v_empty=0.0, membership=soft)
    ref = np.random.default_rng(3).normal(size=(500, 3))
    mu_ref, sig_ref = ref.mean(0), np.cov(ref, rowvar=False)
    got_mean, got_fid = mean_game(m), fid_game(m)
    feats = bank["f"]
    for k, mask in enumerate(m):
        w = direct_weights(units, bank.contributor_index, resp, mask)
        assert w.sum() == pytest.approx(1.0)
        assert got_mean[k] == pytest.approx(float(w @ bank["score"]), rel=1e-10)
        keep = w > 0
        expected = frechet(w @ feats, np.cov(feats[keep], rowvar=False, aweights=w[keep], ddof=1), mu_ref, sig_ref)
        assert got_fid[k] == pytest.approx(expected, rel=1e-6)


def test_responsibility_is_stored_sparse_and_fed_in_any_chunking(monkeypatch):
    """Only the holders' entries are stored; a sparse input, and feeding the metric a few rows
    at a time, give the same coalition values as the dense input fed in one chunk."""
    from scipy import sparse

    import surrogateshap.games.proxy as proxy

    units = condition_units(registry(shared=True))
    bank = unit_bank(units)
    resp = random_responsibility(units, bank.contributor_index)
    args = (units.contributor_ids, units.unit_ids, units.counts, bank.contributor_index)
    dense, from_sparse = SoftMembership(*args, resp), SoftMembership(*args, sparse.csr_array(resp))
    holders = (units.counts > 0).sum(axis=0)[bank.contributor_index]
    assert sparse.issparse(dense.responsibility) and dense.responsibility.nnz == holders.sum()
    assert sparse.issparse(dense.cell_matrix()) and dense.cell_matrix().nnz == holders.sum()
    np.testing.assert_allclose(dense.contributor_mass(), resp.sum(axis=0))
    m = masks(32, 5)
    expected = ProxyGame(bank, fid_metric(), v_empty=0.0, membership=dense)(m)
    monkeypatch.setattr(proxy, "_CHUNK_ENTRIES", 7 * dense.n_cells)  # 7 rows per metric update
    got = ProxyGame(bank, fid_metric(), v_empty=0.0, membership=from_sparse)(m)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_membership_saves_sparse_and_loads_back(tmp_path):
    units = condition_units(registry(shared=True))
    bank = unit_bank(units)
    soft = SoftMembership(
        units.contributor_ids, units.unit_ids, units.counts, bank.contributor_index,
        random_responsibility(units, bank.contributor_index),
    )
    back = SoftMembership.load(soft.save(tmp_path / "membership.npz"))
    assert back.responsibility.nnz == soft.responsibility.nnz
    np.testing.assert_array_equal(back.responsibility.toarray(), soft.responsibility.toarray())
    np.testing.assert_array_equal(back.unit_index, soft.unit_index)
    assert (back.contributor_ids, back.unit_ids) == (soft.contributor_ids, soft.unit_ids)


def test_twins_are_told_apart_only_through_responsibility():
    units = condition_units(registry(shared=True))
    bank = unit_bank(units)
    # c2's share of label 1 is the high-score half of the unit's samples
    resp = random_responsibility(units, bank.contributor_index)
    rows = np.flatnonzero(bank.contributor_index == 1)
    high = bank["score"][rows] > np.median(bank["score"][rows])
    resp[rows, 1], resp[rows, 2] = np.where(high, 0.05, 0.95), np.where(high, 0.95, 0.05)
    soft = SoftMembership(units.contributor_ids, units.unit_ids, units.counts, bank.contributor_index, resp)
    game = ProxyGame(bank, ContributorMean("score"), v_empty=0.0, membership=soft)
    only_c1, only_c2 = np.eye(5, dtype=bool)[[1, 2]]
    assert game(only_c2[None])[0] > game(only_c1[None])[0] + 0.3
    # the paper's proxy (responsibility = data shares) cannot tell them apart
    shares = SoftMembership.shares(units, bank.contributor_index)
    twins = shares.responsibility.toarray()[rows][:, [1, 2]]
    np.testing.assert_allclose(twins, np.tile([50 / 70, 20 / 70], (rows.size, 1)))
    plain = ProxyGame(bank, ContributorMean("score"), v_empty=0.0, membership=shares)
    assert plain(only_c1[None])[0] == pytest.approx(plain(only_c2[None])[0])


def test_bad_membership_inputs_raise_clear_errors():
    units = condition_units(registry(shared=True))
    bank = unit_bank(units)
    resp = random_responsibility(units, bank.contributor_index)
    args = (units.contributor_ids, units.unit_ids, units.counts, bank.contributor_index)
    wrong = resp.copy()
    wrong[0, 4] = 0.5
    with pytest.raises(ValueError, match="holds no training example"):
        SoftMembership(*args, wrong / wrong.sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="sum to 1"):
        SoftMembership(*args, resp * 2)
    soft = SoftMembership(*args, resp)
    with pytest.raises(ValueError, match="cannot both be given"):
        ProxyGame(bank, ContributorMean("score"), 0.0, weights=np.ones(3), membership=soft)
    other = unit_bank(condition_units(registry(shared=False)))
    with pytest.raises(ValueError, match="does not describe this bank"):
        ProxyGame(other, ContributorMean("score"), 0.0, membership=soft)
    # a holder without any responsibility in the bank cannot be scored, even beside its twin
    rows = np.flatnonzero(bank.contributor_index == 1)  # the unit c1 and c2 share
    silent = resp.copy()
    silent[rows, 1], silent[rows, 2] = 1.0, 0.0
    game = ProxyGame(bank, ContributorMean("score"), 0.0, membership=SoftMembership(*args, silent))
    assert np.isfinite(game(np.eye(5, dtype=bool)[[1]])).all()
    with pytest.raises(ValueError, match="'c2' is in coalition 0 but has no samples"):
        game(np.array([[False, True, True, False, False]]))


def gaussian_training(separation: float, seed: int = 0, scale: int = 1):
    """Training features of registry(shared=True): holders of a unit differ by ``separation``."""
    reg = registry(shared=True, scale=scale)
    rng = np.random.default_rng(seed)
    centre = {"c0": 0.0, "c1": 0.0, "c2": separation, "c3": 0.0, "c4": separation}
    ids = [ex.example_id for ex in reg.examples]
    x = np.array([rng.normal(centre[ex.contributor], 1.0, size=2) for ex in reg.examples])
    return reg, ids, x


@pytest.mark.parametrize("calibration", [None, "temperature"])
def test_classifier_recovers_the_bayes_posterior_with_data_share_priors(calibration):
    reg, ids, x = gaussian_training(separation=2.0, scale=50)
    units = condition_units(reg)
    model = ResponsibilityModel(seed=0, calibration=calibration).fit(units, x, ids)
    cal = model.calibration_["label:1"]
    assert cal["log_loss"] < cal["prior_log_loss"] - 0.1 and not cal["fallback"]
    assert set(model.calibration_) == {"label:1", "label:3+4"}
    # samples of the shared unit label:1 (c1: N((0, 0), I), 2500 examples; c2: N((2, 2), I), 1000 examples)
    grid = np.repeat(np.linspace(-1, 3, 13)[:, None], 2, axis=1)
    soft = model.membership(np.ones(13, dtype=int), grid)
    lik1 = 2500 * np.exp(-0.5 * ((grid - 0.0) ** 2).sum(1))
    lik2 = 1000 * np.exp(-0.5 * ((grid - [2.0, 2.0]) ** 2).sum(1))
    resp = soft.responsibility.toarray()
    np.testing.assert_allclose(resp[:, 2], lik2 / (lik1 + lik2), atol=0.05)
    assert resp[:, [0, 3, 4]].sum() == 0
    assert soft.responsibility.nnz == 13 * 2  # only the two holders of label:1 are stored


def test_classifier_falls_back_to_data_shares_when_holders_look_alike():
    reg, ids, x = gaussian_training(separation=0.0)
    units = condition_units(reg)
    with pytest.warns(UserWarning, match="cannot separate the holders"):
        model = ResponsibilityModel(seed=0).fit(units, x, ids)
    assert model.calibration_["label:1"]["fallback"]
    soft = model.membership(np.array([0, 1, 2]), np.zeros((3, 2)))
    resp = soft.responsibility.toarray()
    np.testing.assert_allclose(resp[1, [1, 2]], [50 / 70, 20 / 70])
    np.testing.assert_allclose(resp[2, [3, 4]], [0.4, 0.6])
    assert resp[0, 0] == 1.0


def test_training_images_reach_a_module_extractor_on_its_device_and_dtype():
    """As for bank images, training images are moved to the extractor's parameters (here float64;
    under a Trainer on a GPU, its device) before embedding."""
    import torch

    from surrogateshap.responsibility import fit_soft_membership

    reg, ids, x = gaussian_training(separation=3.0)
    units = condition_units(reg)
    pixels = dict(zip(ids, torch.tensor(x, dtype=torch.float32)))
    extractor = torch.nn.Linear(2, 2, dtype=torch.float64)
    with torch.no_grad():
        extractor.weight.copy_(torch.eye(2))
        extractor.bias.zero_()
    bank = unit_bank(units, dim=2)
    membership, model = fit_soft_membership(
        units, bank, {"f": extractor}, ["f"], lambda batch: torch.stack([pixels[e] for e in batch])
    )
    assert not model.calibration_["label:1"]["fallback"] and model.calibration_["label:1"]["accuracy"] > 0.8
    assert membership.responsibility.shape == (len(bank), 5)


def test_unknown_calibration_is_named_with_the_choices():
    reg, ids, x = gaussian_training(separation=2.0)
    with pytest.raises(ValueError, match="calibration must be one of .*'temperature'"):
        ResponsibilityModel(calibration="platt").fit(condition_units(reg), x, ids)


def test_classifier_needs_every_training_feature():
    reg, ids, x = gaussian_training(separation=2.0)
    with pytest.raises(ValueError, match="missing"):
        ResponsibilityModel().fit(condition_units(reg), x[:100], ids[:100])


def test_digits_units_give_the_plain_plan_and_shared_digits_one_unit_each():
    from surrogateshap.examples.digits.planting import DigitsPlanting, digits_registry
    from surrogateshap.generation import SamplingPlan

    plain = digits_registry()
    units = condition_units(plain)
    assert not units.shared and units.unit_ids == plain.contributor_ids
    a, b = SamplingPlan(plain, 5, seed=3), SamplingPlan(units.registry, 5, seed=3)
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    shared = condition_units(digits_registry(DigitsPlanting(condition="digit").to_config()))
    assert shared.unit_ids == [f"label:{d}" for d in range(10)]
    assert all(shared.holders(d).tolist() == [2 * d, 2 * d + 1] for d in range(10))
    plan = SamplingPlan(shared.registry, 4, seed=0)
    assert {plan[i]["condition"] for i in range(len(plan)) if plan[i]["contributor"] == "label:3"} == {3}


def test_shared_captions_form_units_and_plan_over_their_captions():
    from surrogateshap.generation import SamplingPlan

    rows = [
        {"example_id": "a1", "contributor": "artist_a", "caption": "a painting of a harbour"},
        {"example_id": "a2", "contributor": "artist_a", "caption": "a portrait in oil"},
        {"example_id": "b1", "contributor": "artist_b", "caption": "a painting of a harbour"},
        {"example_id": "b2", "contributor": "artist_b", "caption": "a painting of a harbour"},
        {"example_id": "c1", "contributor": "artist_c", "caption": "a still life"},
    ]
    units = condition_units(ContributorRegistry.from_rows(rows))
    # units in order of first appearance
    assert units.unit_ids == ["shared:artist_a+artist_b", "artist_a", "artist_c"]
    np.testing.assert_array_equal(units.counts, [[1, 1, 0], [2, 0, 0], [0, 0, 1]])
    plan = SamplingPlan(units.registry, 6, seed=0)
    prompts = {plan[i]["condition"] for i in range(len(plan)) if plan[i]["contributor"] == "shared:artist_a+artist_b"}
    assert prompts == {"a painting of a harbour"}


def test_text_to_image_with_shared_captions_end_to_end(tmp_path, one_thread):
    """A tiny Stable Diffusion (real diffusers code) with two artists sharing a caption."""
    import torch
    from PIL import Image
    from tiny_pipelines import save_tiny_sd

    from surrogateshap.generation import ImageFolderSource, SamplingPlan, generate_bank
    from surrogateshap.generation.backends.stable_diffusion import StableDiffusion
    from surrogateshap.responsibility import fit_soft_membership

    rows, rng = [], np.random.default_rng(0)
    for artist, level in (("bright", 0.85), ("dark", 0.15)):
        for k in range(12):
            caption = "a harbour at dusk" if k < 8 else f"{artist} study {k}"
            rows.append({"example_id": f"{artist}{k}", "contributor": artist, "caption": caption})
            pixels = np.clip(level + 0.1 * rng.normal(size=(16, 16, 3)), 0, 1)
            Image.fromarray((pixels * 255).astype(np.uint8)).save(tmp_path / f"{artist}{k}.png")
    units = condition_units(ContributorRegistry.from_rows(rows))
    assert units.unit_ids == ["shared:bright+dark", "bright", "dark"]

    def brightness(images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3))

    backend = StableDiffusion.from_pretrained(save_tiny_sd(tmp_path / "sd"))
    plan = SamplingPlan(units.registry, 4, seed=0)
    bank = generate_bank(backend, plan, {"brightness": brightness}, tmp_path / "bank", num_inference_steps=2,
                         batch_size=4, trainer_kwargs={"enable_progress_bar": False, "logger": False})
    assert bank.contributor_ids == units.unit_ids
    membership, model = fit_soft_membership(
        units, bank, {"brightness": brightness}, ["brightness"], ImageFolderSource(tmp_path, size=16), cv=4
    )
    assert model.calibration_["shared:bright+dark"]["accuracy"] == 1.0
    shared_rows = bank.contributor_index == 0
    resp = membership.responsibility.toarray()
    np.testing.assert_allclose(resp[shared_rows].sum(axis=1), 1.0)
    assert (resp[~shared_rows].max(axis=1) == 1.0).all()
    game = ProxyGame(bank, ContributorMean("brightness"), v_empty=0.0, membership=membership)
    values = game(np.array([[True, False], [False, True], [True, True]]))
    assert np.isfinite(values).all()
