"""A config file read strictly, before Snakemake's own loader has a say: a key given twice, broken
YAML, an empty or non-mapping file each raise ConfigError naming the file (and the line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gradnoise.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} given twice (first at line {seen[key].line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping a config file holds; a missing, broken, empty or non-mapping file, or one with a
    duplicate key, raises ConfigError naming it."""
    path = Path(path)
    try:
        with path.open("rb") as f:  # YAML's errors then name the file's line, and bad bytes
            data = yaml.load(f, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except OSError as err:
        raise ConfigError(f"config file {path}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: holds {type(data).__name__ if data is not None else 'nothing'}; "
            "allowed: a mapping with the keys of config/README.md (at least `experiments`)"
        )
    if not data:
        raise ConfigError(
            f"config file {path}: empty mapping {{}}; allowed: a mapping with the keys of "
            "config/README.md (at least `experiments`); the default is config/config.yaml"
        )
    return data
