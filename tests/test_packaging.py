import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_wheel_installs_metrics_and_callbacks_under_surrogateshap(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("surrogateshap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "surrogateshap/metrics/__init__.py" in names
    assert "surrogateshap/metrics/base.py" in names
    assert "surrogateshap/callbacks/__init__.py" in names
    assert not any(n.startswith(("metrics/", "callbacks/", "tests/")) for n in names)
    # every module of the source tree ships: no subpackage forgotten in pyproject's package list
    for folder, prefix in ((ROOT / "surrogateshap", "surrogateshap"), (ROOT / "metrics", "surrogateshap/metrics"),
                           (ROOT / "callbacks", "surrogateshap/callbacks")):
        for module in folder.rglob("*.py"):
            assert f"{prefix}/{module.relative_to(folder).as_posix()}" in names, module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "surrogateshap = surrogateshap.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_editable_install_imports_the_subpackages():
    import surrogateshap.callbacks
    import surrogateshap.metrics

    assert Path(surrogateshap.metrics.__file__).parent == ROOT / "metrics"
    assert Path(surrogateshap.callbacks.__file__).parent == ROOT / "callbacks"
