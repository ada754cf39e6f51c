import sys
from pathlib import Path

# tests share the closed-form games in known_games.py
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
import torch  # noqa: E402

#: config overrides of a setting's run small enough for a test: 2 samples per contributor, 3 sampling steps, a
#: 24-coalition estimate with one fixed small surrogate
TINY = {
    "plan.samples_per_contributor": 2,
    "generation.num_inference_steps": 3,
    "base.samples_per_contributor": 2,
    "estimator.budget": 24,
    "estimator.n_holdout": 0,
    "estimator.options": {"cv": 2, "std": None,
                          "param_grid": {"max_depth": [2], "learning_rate": [0.1], "n_estimators": [20]}},
}


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny models on one thread: on a shared 2-core machine extra OpenMP threads only
    spin against each other (a tiny UNet call takes ~10x longer with 2). Results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (a script, not a package) as module ``<name>_benchmark``."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
