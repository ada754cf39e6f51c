"""benchmarks/estimator_peers.py: the tabulated games and the summary (shapiq's side needs its own environment)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark

from surrogateshap import estimate
from surrogateshap.coalitions import all_coalitions
from surrogateshap.games import MoebiusGame


@pytest.fixture(scope="module")
def peers():
    return load_benchmark("estimator_peers")


def test_a_table_game_has_the_games_exact_values(peers):
    game = MoebiusGame.random(7, 3, 12, seed=3)
    values = game(all_coalitions(7))
    table = peers.table_game(values, 7)
    masks = np.random.default_rng(0).random((20, 7)) < 0.5
    np.testing.assert_allclose(table(masks), game(masks))
    np.testing.assert_allclose(estimate(table, "exact", interactions=False).values, game.shapley_values(),
                               rtol=1e-10, atol=1e-12)


def test_the_tabular_game_is_an_interventional_probability(peers):
    values = peers.tabular_values("wine", 4)
    assert values.shape == (16,)
    assert np.all((values >= 0) & (values <= 1))
    np.testing.assert_array_equal(values, peers.tabular_values("wine", 4))  # seeded: the same table again
    assert np.ptp(values) > 0.01  # the features matter to the explained prediction


def test_the_summary_counts_cells_within_ten_percent_and_leaves_out_exact_games(peers, tmp_path):
    rows = []
    for seed in range(3):
        rows += [dict(game="g", budget=64, seed=seed, method=peers.DEFAULT, error=0.105, seconds=0.1, distinct=64),
                 dict(game="g", budget=64, seed=seed, method="peer", error=0.1, seconds=0.01, distinct=64),
                 dict(game="g", budget=128, seed=seed, method=peers.DEFAULT, error=0.05, seconds=0.1, distinct=128),
                 dict(game="g", budget=128, seed=seed, method="peer", error=0.02, seconds=0.01, distinct=128),
                 dict(game="order2", budget=64, seed=seed, method="peer", error=0.0, seconds=0.01, distinct=64),
                 dict(game="order2", budget=64, seed=seed, method=peers.DEFAULT, error=0.01, seconds=0.1,
                      distinct=64)]
    path = tmp_path / "peers.md"
    peers.write_markdown(pd.DataFrame(rows), path)
    text = path.read_text()
    assert "within 10% in 1 of 2 cells" in text
    assert "| g | 128 | 0.0500 | peer | 0.0200 | 2.50 |" in text
    assert "leave out order2" in text and "## order2" in text
