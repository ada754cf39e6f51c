"""The house rules, checked on the source: no import cycle (late imports count), no private attribute of
another module's objects, and data flowing one way.

Modules are read with ``ast`` (nothing is imported). ``metrics/`` and ``callbacks/`` are the
``surrogateshap.metrics`` and ``surrogateshap.callbacks`` subpackages.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"surrogateshap": ROOT / "surrogateshap", "surrogateshap.metrics": ROOT / "metrics",
            "surrogateshap.callbacks": ROOT / "callbacks"}


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """Every import of ``name`` (top level or inside a function): (absolute module, imported names, line)."""
    here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = base + ("." + node.module if node.module else "")
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names], node.lineno))
    return found


def _ours(target: str) -> str | None:
    """The project module an import resolves to (a submodule imported by name counts as that module)."""
    while target and target not in MODULES:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target or None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, names, _ in _imports(name, path):
            # `from pkg import sub` ties to the submodule; `from pkg import name` to pkg's __init__
            for candidate in [f"{target}.{n}" if f"{target}.{n}" in MODULES else target for n in names or [""]]:
                module = _ours(candidate)
                if module and module != name:
                    graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_not_even_through_a_late_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = _graph()
    assert len(graph) > 60 and graph["surrogateshap.pipeline"]  # the graph is really built
    assert _cycles(graph) == []


def _private_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each private attribute of an object that is not ``self``/``cls`` and that this source
    does not define itself, and each ``getattr``/``setattr``/``hasattr`` of such a name."""
    tree = ast.parse(source)
    own = set()  # private names this module defines (its own classes' attributes, functions, states)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)

    def private(key: object) -> bool:
        return isinstance(key, str) and key.startswith("_") and not key.startswith("__") and key not in own

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, f"reads .{node.attr}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2 \
                and node.func.id in ("getattr", "setattr", "hasattr"):
            key = node.args[1]
            if isinstance(key, ast.Constant) and private(key.value):
                found.append((node.lineno, f"{node.func.id}(..., {key.value!r})"))
    return found


def test_no_private_attribute_of_another_module():
    # the check finds what it must find
    assert _private_reads("def f(metric):\n    return metric._update_count") == [(2, "reads ._update_count")]
    assert _private_reads("getattr(m, '_x', 0)") == [(1, "getattr(..., '_x')")]
    assert _private_reads("class A:\n    def f(self, other):\n        return other._y + self._y\n"
                          "    def g(self):\n        self._y = 1") == []
    problems = []
    for name, path in MODULES.items():
        where = path.relative_to(ROOT)
        problems += [f"{where}:{line}: {what}" for line, what in _private_reads(path.read_text(encoding="utf-8"))]
        for target, names, line in _imports(name, path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if _ours(target) and private:
                problems.append(f"{where}:{line}: imports {private} from {target}")
    assert problems == []


def test_data_flows_one_way():
    """Metrics know nothing of games, estimators nothing of images or banks, games nothing of estimators."""
    graph = _graph()
    forbidden = {
        "surrogateshap.metrics": ("surrogateshap.games", "surrogateshap.estimators", "surrogateshap.attribution"),
        "surrogateshap.estimators": ("surrogateshap.bank", "surrogateshap.metrics", "surrogateshap.generation",
                                     "surrogateshap.attribution", "surrogateshap.report"),
        "surrogateshap.games": ("surrogateshap.estimators", "surrogateshap.attribution", "surrogateshap.report"),
        "surrogateshap.report": ("surrogateshap.attribution", "surrogateshap.generation", "surrogateshap.callbacks"),
    }
    bad = [
        (module, target)
        for module, targets in graph.items()
        for layer, banned in forbidden.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == b or target.startswith(b + ".") for b in banned)
    ]
    assert bad == []
    # the core does not depend on an example setting
    core = [m for m in graph if not m.startswith("surrogateshap.examples") and m != "surrogateshap.cli"]
    assert [(m, t) for m in core for t in graph[m] if t.startswith("surrogateshap.examples")] == []
