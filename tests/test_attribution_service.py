import numpy as np
import pytest
from surrogateshap.metrics import ContributorFID, ContributorMean

from surrogateshap import ContributorBank, attribute_bank
from surrogateshap.attribution import EstimatorSettings

FAST = {"param_grid": {"max_depth": [2], "learning_rate": [0.3]}, "max_trees": 40, "cv": 3}


def small_bank(n: int = 6, m: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    shift = np.repeat(rng.normal(size=(n, 4)), m, axis=0)
    features = {"x": (shift + rng.normal(size=(n * m, 4))).astype(np.float32),
                "score": rng.random(n * m).astype(np.float32)}
    return ContributorBank(features, np.repeat([f"c{i}" for i in range(n)], m)), rng.normal(size=(300, 4))


def test_utilities_attributed_in_threads_equal_one_at_a_time_and_leave_the_thread_limits_as_found():
    import warnings

    import torch
    from threadpoolctl import threadpool_info

    bank, reference = small_bank()
    utilities = {"mean": ContributorMean(feature="score"), "fid": ContributorFID(feature="x", reference=reference),
                 "mean_again": ContributorMean(feature="score")}
    v_empty = {"mean": 0.0, "fid": 40.0, "mean_again": 0.0}
    settings = {"budget": 40, "n_holdout": 6, "options": FAST}
    one = attribute_bank(bank, utilities, v_empty, {**settings, "n_jobs": 1}, progress=False).document
    found = (torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()], list(warnings.filters))
    two = attribute_bank(bank, utilities, v_empty, {**settings, "n_jobs": 3}, progress=False).document
    assert (torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()],
            list(warnings.filters)) == found
    assert list(two["utilities"]) == list(utilities)  # in the given order
    for name in utilities:
        first, second = one["utilities"][name], two["utilities"][name]
        np.testing.assert_allclose(second["values"], first["values"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(second["std"], first["std"], rtol=1e-9, atol=1e-12)
        assert second["lds"] == pytest.approx(first["lds"], abs=1e-9)
    # n_jobs changes how, not what: equal settings
    assert EstimatorSettings(n_jobs=2) == EstimatorSettings()
    assert EstimatorSettings().n_jobs == -1 and EstimatorSettings(n_jobs=8).jobs_for(3) == 3
    with pytest.raises(ValueError, match="n_jobs must be an integer of at least 1, got 0. Or -1 for one per core"):
        EstimatorSettings(n_jobs=0)


def test_an_error_in_the_threads_cancels_the_jobs_not_yet_started():
    import threading
    import time

    from surrogateshap.threads import shared_cores

    started = []
    gate = threading.Event()

    def job(i):
        started.append(i)
        if i == 0:
            raise KeyboardInterrupt  # what Ctrl-C raises in the thread that reads the results
        gate.wait(2.0)
        return i

    with pytest.raises(KeyboardInterrupt), shared_cores(2) as pool:
        for _ in pool.map(job, range(8)):
            pass
    gate.set()
    time.sleep(0.1)
    assert len(started) <= 3  # job 0, the one running beside it, at most one picked up meanwhile; not all 8
