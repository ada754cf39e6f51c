import re
from pathlib import Path

import numpy as np


def test_readme_python_example_runs_and_finds_the_planted_pair():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"## Python\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    att = namespace["att"]
    off = att.interactions - np.diag(np.diag(att.interactions))
    assert np.unravel_index(np.abs(off).argmax(), off.shape) in ((0, 5), (5, 0))
    assert abs(att.efficiency_gap()) < 1e-9
    assert np.argmax(att.values) == 0
