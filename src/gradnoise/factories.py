"""User code named in the workflow config (DESIGN.md §12): an entry ``{factory: "pkg.mod:fn",
kwargs: {...}}`` stands for ``fn(**kwargs)``. This module finds the function (errors name the config
key), calls it, and says which file holds it and what that file was, for the provenance and for the
rules, which declare the file as an input so that editing it reruns what it made.

A module is looked up as Python imports it, with the working directory (where Snakemake runs, and
so every job) on the path after everything else: a ``my_models.py`` beside the config's project
works without installing it. Standard library only: the workflow resolves factories before torch
is needed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gradnoise.errors import ConfigError

_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_SPEC = re.compile(rf"^({_NAME}):({_NAME})$")
ROLES = ("dataset", "model", "loss")  # the experiment keys that may name a factory


def is_factory(entry: Any) -> bool:
    return isinstance(entry, Mapping) and "factory" in entry


def factories_of(exp: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The experiment's entries that name a factory, by key (``dataset``, ``model``, ``loss``)."""
    return {role: exp[role] for role in ROLES if is_factory(exp.get(role))}


def _where(key: str) -> str:
    """How an error names `key`: a config key, or a command-line option (``--model``) as given."""
    return key if key.startswith("--") else f"config key {key}"


def split_spec(spec: Any, key: str) -> tuple[str, str]:
    """(module, attribute) of ``pkg.mod:attr``; ConfigError naming `key` otherwise."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ConfigError(
            f"{_where(key)}: expected 'package.module:function' (a module importable from the "
            f"working directory or the Python path), got {spec!r}"
        )
    return match.group(1), match.group(2)


def _importable_from_workdir() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)


def resolve(spec: Any, key: str) -> Callable[..., Any]:
    """The callable named by ``pkg.mod:attr`` (the attribute may be dotted); `key` is the config
    key or command-line option that names it, for errors."""
    module, attr = split_spec(spec, key)
    _importable_from_workdir()
    try:
        obj: Any = importlib.import_module(module)
    except Exception as err:  # the user's module may fail in any way while it is imported
        raise ConfigError(f"{_where(key)}: cannot import {module!r} ({err!r})") from err
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{_where(key)}: {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{_where(key)}: {spec!r} is a {type(obj).__name__}, not callable")
    return obj


def call(entry: Mapping[str, Any], key: str) -> Any:
    """``fn(**kwargs)`` of a factory entry at config key `key` (e.g. ``experiments.x.model``)."""
    fn = resolve(entry["factory"], f"{key}.factory")
    kwargs = entry.get("kwargs", {})
    try:
        return fn(**kwargs)
    except Exception as err:
        raise ConfigError(
            f"{_where(key)}: {entry['factory']}(**{kwargs!r}) failed: {err!r}"
        ) from err


def source_file(spec: str, key: str) -> Path | None:
    """The file of the factory's module (None for a module without one, e.g. a built-in)."""
    module, _ = split_spec(spec, key)
    _importable_from_workdir()
    try:
        found = importlib.util.find_spec(module)
    except Exception as err:
        raise ConfigError(f"{_where(key)}: cannot import {module!r} ({err!r})") from err
    if found is None:
        raise ConfigError(f"{_where(key)}: no module named {module!r}")
    if not found.has_location or found.origin is None:
        return None
    return Path(found.origin).resolve()


def _shown(path: Path) -> str:
    """A path relative to the working directory where it lies there (outputs do not name the
    machine's folders), else absolute."""
    cwd = Path.cwd().resolve()
    return str(path.relative_to(cwd) if path.is_relative_to(cwd) else path)


def provenance(entry: Mapping[str, Any], key: str) -> dict[str, Any]:
    """What made a factory's product: its module, function and kwargs, and its module's file with
    the file's SHA-256 (None for a module without a file)."""
    module, function = split_spec(entry["factory"], f"{key}.factory")
    path = source_file(entry["factory"], f"{key}.factory")
    return {
        "module": module,
        "function": function,
        "kwargs": dict(entry.get("kwargs", {})),
        "file": None if path is None else _shown(path),
        "sha256": None if path is None else hashlib.sha256(path.read_bytes()).hexdigest(),
    }
