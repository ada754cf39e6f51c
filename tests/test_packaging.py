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


def _dependency_closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions that ``requirements`` pull in, extras and markers applied."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in requirement.extras or {""}):
                todo.append(child)
    return {name for name, _ in seen}


def test_dependencies_do_not_pull_bitsandbytes():
    # bitsandbytes (from lightning[pytorch-extra]) is imported by peft whenever a LoRA is attached, and on
    # a CPU with AVX512-BF16 it then asks the Hugging Face hub for a kernel: a run-time download attempt
    # the project forbids. Nothing here quantizes, so the closure of the declared dependencies must not hold it.
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    closure = _dependency_closure(declared)
    assert "lightning" in closure and "jsonargparse" in closure
    assert "bitsandbytes" not in closure
