"""YAML configs: loading with overrides and ``${...}`` references, and class_path/init_args instantiation.

A config is plain YAML. Two conventions make it executable:

- ``${dotted.key}`` inside a string refers to another value of the same config (``${paths.model_path}``);
  a string that is exactly one reference takes the referenced value with its type. ``${package_dir}``
  (unless the config defines that key) is the installed ``surrogateshap`` package folder, so shipped
  configs can point at the models shipped inside the package (``${package_dir}/examples/digits/assets/ddpm``).
- A mapping with ``class_path`` (and optionally ``init_args``) describes an object, in the
  jsonargparse / LightningCLI layout. ``class_path`` names a class or any callable, e.g.
  ``pkg.module.Class`` or ``pkg.module.Class.from_pretrained``; :func:`instantiate` builds it
  with the (recursively instantiated) ``init_args`` as keyword arguments.

Every config keeps the files the user must supply under a top-level ``paths`` mapping, so
:func:`missing_paths` can list all of them before anything heavy is loaded.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError", "check_paths", "instantiate", "load_config", "missing_paths", "resolve_target", "set_dotted",
]

_REF = re.compile(r"\$\{([^}]+)\}")
_NODE_KEYS = {"class_path", "init_args"}
PACKAGE_DIR_KEY = "package_dir"


class ConfigError(ValueError):
    """A config that cannot be read or resolved; the message names the offending key."""


def _get_dotted(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for i, part in enumerate(key.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(key.split(".")[:i]) or "the top level"
            have = sorted(node) if isinstance(node, Mapping) else []
            raise KeyError(f"config key '{key}' does not exist: '{part}' is not under {where} (keys there: {have}).")
        node = node[part]
    return node


def set_dotted(config: dict[str, Any], key: str, value: Any, *, create: bool = False) -> None:
    """Set ``config[a][b][c] = value`` for ``key="a.b.c"``; an unknown key raises a ConfigError naming it."""
    parts = key.split(".")
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or (part not in node and not create):
            where = ".".join(parts[:i]) or "the top level"
            raise ConfigError(f"override key '{key}': '{part}' is not a section under {where}.")
        node = node.setdefault(part, {})
    if not isinstance(node, dict) or (parts[-1] not in node and not create):
        have = sorted(node) if isinstance(node, dict) else []
        raise ConfigError(f"override key '{key}' does not exist in the config (keys there: {have}).")
    node[parts[-1]] = value


def _parse_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like dotted.key=value.")
        key, text = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(text)
    return out


def _resolve_refs(config: dict[str, Any]) -> dict[str, Any]:
    """Replace ``${key}`` references (resolving chains, refusing cycles)."""

    def value_of(key: str, stack: tuple[str, ...]) -> Any:
        if key in stack:
            raise ConfigError(f"config references form a cycle: {' -> '.join((*stack, key))}.")
        try:
            target = _get_dotted(config, key)
        except KeyError as err:
            if key == PACKAGE_DIR_KEY:
                return str(Path(__file__).resolve().parent)
            raise ConfigError(f"${{{key}}} in the config: {err.args[0]}") from None
        return walk(target, (*stack, key))

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, stack) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, stack) for v in node]
        if isinstance(node, str):
            whole = _REF.fullmatch(node.strip())
            if whole:
                return value_of(whole.group(1).strip(), stack)
            return _REF.sub(lambda m: str(value_of(m.group(1).strip(), stack)), node)
        return node

    return walk(config, ())


def load_config(
    path: str | os.PathLike, overrides: Mapping[str, Any] | Iterable[str] | None = None
) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` and resolve ``${...}`` references.

    ``overrides`` maps dotted keys to values (``{"paths.model_path": "/data/sd"}``) or is a list
    of ``"dotted.key=value"`` strings (values parsed as YAML). Overriding a key the config does
    not have is an error naming it (typos do not pass silently). Relative paths stay relative to
    the working directory.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"config file '{path}' does not exist.")
    with path.open(encoding="utf-8") as handle:
        try:
            config = yaml.safe_load(handle)
        except yaml.YAMLError as err:
            raise ConfigError(f"config file '{path}' is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level.")
    for key, value in _parse_overrides(overrides).items():
        set_dotted(config, key, value)
    return _resolve_refs(config)


def missing_paths(config: Mapping[str, Any]) -> dict[str, str]:
    """The entries of the config's ``paths`` section that do not exist on disk (key -> path)."""
    paths = config.get("paths") or {}
    return {k: str(v) for k, v in paths.items() if v is not None and not Path(str(v)).expanduser().exists()}


def check_paths(config: Mapping[str, Any]) -> None:
    """Raise one FileNotFoundError listing every missing file of the ``paths`` section."""
    missing = missing_paths(config)
    if missing:
        lines = "\n".join(f"  paths.{k}: {v}" for k, v in missing.items())
        raise FileNotFoundError(
            f"{len(missing)} file(s) named in the config's `paths` section are missing (nothing is downloaded; "
            f"copy them there or override the keys; the config's comments say what each one is):\n{lines}"
        )


def resolve_target(class_path: str) -> Any:
    """The class or callable named by a dotted path (a module, then attributes: ``pkg.mod.Class.method``)."""
    if not isinstance(class_path, str) or not class_path or class_path.startswith("."):
        raise ConfigError(f"class_path must be a dotted name like 'package.module.Class', got {class_path!r}.")
    parts = class_path.split(".")
    module, err = None, None
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError as exc:
            if exc.name is None or not ".".join(parts[:cut]).startswith(exc.name):
                raise  # a module that exists failed to import one of its own dependencies
            err = exc
    if module is None:
        raise ConfigError(f"class_path '{class_path}': no importable module in it ({err}).")
    target: Any = module
    for attr in parts[cut:]:
        if not hasattr(target, attr):
            raise ConfigError(f"class_path '{class_path}': '{'.'.join(parts[:cut])}' has no attribute '{attr}'.")
        target = getattr(target, attr)
        cut += 1
    if not callable(target):
        raise ConfigError(f"class_path '{class_path}' names a {type(target).__name__}, not a class or callable.")
    return target


def _parameters(target: Any) -> dict[str, inspect.Parameter] | None:
    """The parameters ``target`` accepts; a class whose ``__init__`` forwards ``**kwargs`` gets its
    base class's too (as LightningCLI resolves them). None when they cannot be known."""
    try:
        params = dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return params
    base = next((b for b in getattr(target, "__mro__", ())[1:] if "__init__" in vars(b)), object)
    inherited = None if base is object else _parameters(base)
    if inherited is None:
        return None
    own = {n: p for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return {**own, **{n: p for n, p in inherited.items() if n not in own}}


def _check_arguments(target: Any, kwargs: Mapping[str, Any], class_path: str, where: str) -> None:
    params = _parameters(target)
    if params is None:
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ConfigError(f"{where}.init_args: {class_path} takes no argument(s) {unknown}; it accepts {accepted}.")
    required = [
        n for n, p in params.items()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in kwargs
    ]
    if required:
        raise ConfigError(f"{where}.init_args: {class_path} needs argument(s) {required}.")


def instantiate(node: Any, where: str = "config") -> Any:
    """Build every ``{class_path, init_args}`` mapping in ``node`` (recursively); other values pass through.

    ``where`` is the node's location, used in error messages (``config.generation.backend``).
    Errors name the location and the class: an unknown class_path, an init argument the class
    does not take, a missing required argument; a FileNotFoundError raised by the class (a
    missing weights file) is re-raised with the location prepended.
    """
    if isinstance(node, list):
        return [instantiate(v, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    if "class_path" not in node:
        return {k: instantiate(v, f"{where}.{k}") for k, v in node.items()}
    extra = set(node) - _NODE_KEYS
    if extra:
        raise ConfigError(f"{where}: unexpected key(s) {sorted(extra)} next to class_path (only init_args).")
    class_path = node["class_path"]
    init_args = node.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise ConfigError(f"{where}.init_args must be a mapping of keyword arguments, got {type(init_args).__name__}.")
    target = resolve_target(class_path)
    kwargs = {k: instantiate(v, f"{where}.init_args.{k}") for k, v in init_args.items()}
    _check_arguments(target, kwargs, class_path, where)
    try:
        return target(**kwargs)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{where} ({class_path}): {err}") from err
