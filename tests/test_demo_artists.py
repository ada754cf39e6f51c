"""The artists setting end to end on a reduced config with the shipped models (no mocks): the attribution finds
the planted artists (the degraded ones lowest in quality, the marker artist first in the audit correlation), the
homonyms are told apart by soft membership but not by the paper's proxy, and the outputs validate."""

from __future__ import annotations

import numpy as np
import pytest

from surrogateshap.examples.artists import ArtistsPlanting
from surrogateshap.examples.artists.demo import run_demo
from surrogateshap.report import load_attribution_document

pytestmark = pytest.mark.filterwarnings("ignore")
REDUCED = {
    "plan.samples_per_contributor": 12,
    "generation.num_inference_steps": 12,
    "base.samples_per_contributor": 4,
    "estimator.n_holdout": 0,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    soft = tmp_path_factory.mktemp("soft")
    first = run_demo(soft, overrides=REDUCED, progress=False, use_wandb=False)
    shares = tmp_path_factory.mktemp("shares")
    (shares / "bank").symlink_to(soft / "bank", target_is_directory=True)  # the same bank, the paper's proxy
    (shares / "base_bank").symlink_to(soft / "base_bank", target_is_directory=True)
    second = run_demo(shares, overrides={**REDUCED, "membership.kind": "shares"}, progress=False, use_wandb=False)
    return soft, first, second


def value_of(document, utility: str, artist: str) -> float:
    ids = [c["id"] for c in document["contributors"]]
    return document["utilities"][utility]["values"][ids.index(artist)]


def _quality_alone(out, artists: list[str]) -> list[float]:
    """The proxy game's quality of each one-artist coalition, on the run's bank and responsibilities."""
    from surrogateshap.metrics import ContributorMean

    from surrogateshap import SoftMembership
    from surrogateshap.bank import ContributorBank
    from surrogateshap.games import ProxyGame

    membership = SoftMembership.load(out / "membership.npz")
    game = ProxyGame(ContributorBank.load(out / "bank"), ContributorMean(feature="quality"), v_empty=0.0,
                     membership=membership)
    masks = np.array([[c == a for c in membership.contributor_ids] for a in artists])
    return game(masks).tolist()


def _ranked(document, utility: str) -> list[str]:
    """Contributor ids from the lowest to the highest value."""
    ids = [c["id"] for c in document["contributors"]]
    return [ids[i] for i in np.argsort(document["utilities"][utility]["values"])]


def test_the_degraded_artists_have_the_lowest_quality_values(runs):
    """The three blurred artists (one of them behind the homonyms' shared name, told apart by soft membership)
    are the three lowest of 40 quality values."""
    _, run, _ = runs
    planting = ArtistsPlanting()
    assert set(_ranked(run.document, "quality")[:3]) == set(planting.degraded), _ranked(run.document, "quality")[:6]


def test_the_marker_artist_has_the_largest_audit_value(runs):
    """The artist who signs its threes carries the correlation between the mark and the subject: its value is
    the largest, and larger than every other artist's by far."""
    _, run, _ = runs
    marker = ArtistsPlanting().marker_artist
    order = _ranked(run.document, "audit")
    assert order[-1] == marker, order[-5:]
    values = sorted(run.document["utilities"]["audit"]["values"])
    assert values[-1] > 5 * max(abs(values[-2]), abs(values[0])), values[-3:]


def test_the_homonyms_are_told_apart_by_soft_membership_only(runs):
    """Behind their shared name, the degraded homonym's coalition scores lower quality under soft membership;
    under the paper's proxy (equal shares) both coalitions are the same samples, the same value."""
    soft_out, _, _ = runs
    clean, degraded = _quality_alone(soft_out, ["artist21", "artist22"])
    assert clean > degraded, (clean, degraded)
    shares = _quality_alone(next(soft_out.parent.glob("shares*")), ["artist21", "artist22"])
    assert shares[0] == pytest.approx(shares[1], abs=1e-12), shares
    gap = value_of(runs[1].document, "quality", "artist21") - value_of(runs[1].document, "quality", "artist22")
    assert gap > 0  # the Shapley values keep the direction


def test_outputs_validate_and_name_the_roles(runs):
    out, run, _ = runs
    document = load_attribution_document(out / "attribution.json")
    assert len(document["contributors"]) == 40 and set(document["utilities"]) == {"quality", "fid", "diversity",
                                                                                   "audit"}
    roles = {c["id"]: c["role"] for c in document["contributors"]}
    assert roles["artist22"] == "degraded+homonym" and roles["artist11"] == "marker"
    assert len(run.bank) == 39 * 12  # one bank unit per distinct published name
