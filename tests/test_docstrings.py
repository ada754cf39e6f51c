"""Docstrings that run: every ``>>>`` example in the package is executed, and the public classes and
functions of the estimators, games, metrics and callbacks must have one.

The modules are imported by their installed names (``surrogateshap.metrics.fid``: ``metrics/`` and
``callbacks/`` install as subpackages), so ``pytest --doctest-modules`` on the folders would not
import them; ``doctest`` is driven here instead.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import os
import pkgutil

import pytest

import surrogateshap

REQUIRED = ("surrogateshap.estimators", "surrogateshap.games", "surrogateshap.metrics", "surrogateshap.callbacks")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [package] + sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, package + "."))


MODULES = _modules("surrogateshap")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()


@pytest.mark.parametrize("package", REQUIRED)
def test_public_classes_and_functions_have_an_example(package):
    missing = []
    for name in _modules(package):
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            public = not attr.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            if public and obj.__module__ == name and ">>>" not in (obj.__doc__ or ""):
                missing.append(f"{name}.{attr}")
    assert not missing, f"no >>> example in the docstring of {missing}"


def test_the_examples_are_found(one_thread):
    found = sum(len(t.examples) for n in MODULES for t in doctest.DocTestFinder().find(importlib.import_module(n), n))
    assert found >= 120, found  # 131 when this test was written
    assert os.path.isdir(os.path.dirname(surrogateshap.__file__))
