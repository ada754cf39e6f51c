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

Configs are strict: :func:`load_config` given the ``sections`` a command reads refuses an unknown
top-level section or an unknown key inside one, listing the valid ones with a "did you mean" for a
typo. A top-level key that some ``${...}`` refers to is a variable of the config (``seed``, ``data``)
and always allowed.
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

from .checks import did_you_mean
from .tables import read_text

__all__ = [
    "ConfigError", "Sections", "check_buildable", "check_paths", "check_sections", "instantiate", "load_config",
    "missing_paths", "resolve_target", "set_dotted",
]

# the sections a command reads: section -> the keys it may hold (None: any keys, e.g. `paths`)
Sections = Mapping[str, "frozenset[str] | None"]

_REF = re.compile(r"\$\{([^}]+)\}")
_NODE_KEYS = {"class_path", "init_args"}
PACKAGE_DIR_KEY = "package_dir"
# bounds on what a config may expand to (YAML aliases of aliases and ${...} of ${...} grow exponentially)
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_STRING = 1_000_000
# the keyword settings torchmetrics' Metric takes through **kwargs (its "advanced metric settings"); it
# raises on any other, so a ContributorMetric's init_args are checked against these plus its own parameters
METRIC_SETTINGS = ("compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn", "distributed_available_fn",
                   "sync_on_compute", "compute_with_cache")


class ConfigError(ValueError):
    """A config that cannot be read or resolved; the message names the offending key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first at line {seen[key] + 1}); keep one",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_error(err: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where (PyYAML's own message spans several lines)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


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
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: {text!r} is not a YAML value ({_yaml_error(err)}); quote strings and close "
                "brackets, e.g. key=[1, 2]."
            ) from None
    return out


def _referenced_roots(node: Any) -> set[str]:
    """The top-level keys that ``${...}`` references anywhere in ``node`` point into."""
    if isinstance(node, dict):
        return set().union(*(_referenced_roots(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_referenced_roots(v) for v in node)) if node else set()
    if isinstance(node, str):
        return {m.group(1).strip().split(".")[0] for m in _REF.finditer(node)}
    return set()


def check_sections(config: Mapping[str, Any], sections: Sections, source: str = "the config") -> None:
    """Refuse a top-level section or a key in a section that the command does not read.

    ``sections`` maps each section to its keys (None: free-form). Top-level keys that a ``${...}``
    reference points into are variables and allowed. Sections the command reads must be mappings.

    >>> check_sections({"estimater": {}}, {"estimator": frozenset({"budget"}), "plan": None})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surrogateshap.config.ConfigError: the config: unknown section 'estimater' (did you mean 'estimator'?); the ...
    """
    variables = _referenced_roots(config)
    for key, value in config.items():
        if key not in sections:
            if key in variables:
                continue
            raise ConfigError(
                f"{source}: unknown section {key!r}{did_you_mean(key, sections)}; the sections are {sorted(sections)}."
            )
        keys = sections[key]
        if keys is None or value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: section {key!r} must be a mapping of keys, got {type(value).__name__}.")
        for sub in value:
            if sub not in keys:
                raise ConfigError(
                    f"{source}: unknown key {sub!r} in section {key!r}{did_you_mean(sub, keys)}; the keys there are "
                    f"{sorted(keys)}."
                )


def _too_large(source: str, how: str) -> ConfigError:
    return ConfigError(f"{source} {how}: YAML aliases or ${{...}} references nested inside each other repeat their "
                       "content many times over; write the values out or share less.")


def _check_size(config: Any, source: str) -> None:
    """Refuse a config whose YAML aliases expand to more than MAX_CONFIG_VALUES values (counted with a stop)."""
    stack, seen = [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_VALUES:
            raise _too_large(source, f"holds more than {MAX_CONFIG_VALUES:,} values")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _resolve_refs(config: dict[str, Any], source: str = "the config") -> dict[str, Any]:
    """Replace ``${key}`` references (resolving chains, refusing cycles and exponential growth)."""
    made = [0]

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
        made[0] += 1
        if made[0] > MAX_CONFIG_VALUES:
            raise _too_large(source, f"expands to more than {MAX_CONFIG_VALUES:,} values")
        if isinstance(node, dict):
            return {k: walk(v, stack) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, stack) for v in node]
        if isinstance(node, str):
            whole = _REF.fullmatch(node.strip())
            if whole:
                return value_of(whole.group(1).strip(), stack)
            text = _REF.sub(lambda m: str(value_of(m.group(1).strip(), stack)), node)
            if len(text) > MAX_CONFIG_STRING:
                raise _too_large(source, f"makes a string of more than {MAX_CONFIG_STRING:,} characters")
            return text
        return node

    return walk(config, ())


def load_config(
    path: str | os.PathLike,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    sections: Sections | None = None,
) -> dict[str, Any]:
    """Read a YAML config, apply ``overrides`` and resolve ``${...}`` references.

    ``overrides`` maps dotted keys to values (``{"paths.model_path": "/data/sd"}``) or is a list
    of ``"dotted.key=value"`` strings (values parsed as YAML). Overriding a key the config does
    not have is an error naming it (typos do not pass silently). With ``sections`` (what the
    command reads, see :func:`check_sections`) unknown sections and keys are refused too. Relative
    paths stay relative to the working directory.
    """
    path = Path(path).expanduser()
    text = read_text(path, "config file", "Pass a YAML config (see configs/).")
    try:
        config = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {_yaml_error(err)}.") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections at the top level, "
                          f"got {type(config).__name__}.")
    _check_size(config, f"config file {path}")
    bad = [k for k in config if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"config file {path}: top-level key {bad[0]!r} is not a name; quote it or rename it.")
    for key, value in _parse_overrides(overrides).items():
        set_dotted(config, key, value)
    if sections is not None:
        check_sections(config, sections, f"config file {path}")
    return _resolve_refs(config, f"config file {path}")


def _path_arguments(node: Any, where: str) -> dict[str, str]:
    """``init_args`` entries named ``path`` or ``*_path`` holding a string: files a class will load."""
    found: dict[str, str] = {}
    if isinstance(node, Mapping):
        args = node.get("init_args") if "class_path" in node else None
        if isinstance(args, Mapping):
            for key, value in args.items():
                if (key == "path" or str(key).endswith("_path")) and isinstance(value, str):
                    found[f"{where}.init_args.{key}"] = value
        for key, value in node.items():
            found.update(_path_arguments(value, f"{where}.{key}" if where else str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.update(_path_arguments(value, f"{where}[{i}]"))
    return found


def missing_paths(config: Mapping[str, Any]) -> dict[str, str]:
    """The files a config names that do not exist on disk (key -> path): every entry of its ``paths``
    section, and every ``init_args`` entry named ``path`` or ``*_path`` (``lora_path``, ``model_path``).

    >>> missing_paths({"paths": {"ddpm": "/no/ddpm"}, "m": {"class_path": "x.Y", "init_args": {"path": "/no/f"}}})
    {'paths.ddpm': '/no/ddpm', 'm.init_args.path': '/no/f'}
    """
    paths = config.get("paths") or {}
    if not isinstance(paths, Mapping):
        raise ConfigError(f"the config's `paths` section must map names to files, got {type(paths).__name__}.")
    named = {f"paths.{k}": str(v) for k, v in paths.items() if v is not None}
    listed = set(named.values())  # an argument that is `${paths.x}` is reported once, as paths.x
    named.update({k: v for k, v in _path_arguments(config, "").items() if v not in listed})
    return {k: v for k, v in named.items() if not Path(v).expanduser().exists()}


def check_paths(config: Mapping[str, Any]) -> None:
    """Raise one FileNotFoundError listing every missing file of the ``paths`` section."""
    missing = missing_paths(config)
    if missing:
        listed = "; ".join(f"{k}: {v}" for k, v in missing.items())
        raise FileNotFoundError(
            f"{len(missing)} file(s) named in the config are missing: {listed} (nothing is downloaded; copy them "
            "there or override the keys with --set, the config's comments say what each one is)."
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
            names = [n for n in dir(target) if not n.startswith("_")]
            raise ConfigError(f"class_path '{class_path}': '{'.'.join(parts[:cut])}' has no attribute "
                              f"'{attr}'{did_you_mean(attr, names)}.")
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
    if f"{base.__module__}.{base.__qualname__}" == "torchmetrics.metric.Metric":
        inherited = {n: inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in METRIC_SETTINGS}
    else:
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


def _node_parts(node: Mapping[str, Any], where: str) -> tuple[str, Mapping[str, Any]]:
    """A ``{class_path, init_args}`` node's class path and arguments, its layout checked."""
    extra = set(node) - _NODE_KEYS
    if extra:
        raise ConfigError(f"{where}: unexpected key(s) {sorted(extra)} next to class_path (only init_args).")
    init_args = node.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise ConfigError(f"{where}.init_args must be a mapping of keyword arguments, got {type(init_args).__name__}.")
    return node["class_path"], init_args


def _target(class_path: str, where: str) -> Any:
    try:
        return resolve_target(class_path)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def check_buildable(node: Any, where: str = "config") -> None:
    """Check, building nothing, that :func:`instantiate` can build ``node``: every class_path imports and
    takes the init_args given (names, required ones). What the classes do with the values (load files)
    is not checked. This is what a run does before its first model is loaded, so that a typo in the
    last utility's class_path is not found after the bank was generated.

    >>> check_buildable({"class_path": "collections.Counter", "init_args": {"iterable": "ab"}})
    >>> check_buildable({"m": {"class_path": "collections.Countr"}}, "config.utilities")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surrogateshap.config.ConfigError: config.utilities.m: class_path 'collections.Countr': ...
    """
    if isinstance(node, list):
        for i, value in enumerate(node):
            check_buildable(value, f"{where}[{i}]")
    elif isinstance(node, Mapping):
        if "class_path" not in node:
            for key, value in node.items():
                check_buildable(value, f"{where}.{key}")
            return
        class_path, init_args = _node_parts(node, where)
        target = _target(class_path, where)
        for key, value in init_args.items():
            check_buildable(value, f"{where}.init_args.{key}")
        _check_arguments(target, init_args, class_path, where)


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
    class_path, init_args = _node_parts(node, where)
    target = _target(class_path, where)
    kwargs = {k: instantiate(v, f"{where}.init_args.{k}") for k, v in init_args.items()}
    _check_arguments(target, kwargs, class_path, where)
    try:
        return target(**kwargs)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{where} ({class_path}): {err}") from err
