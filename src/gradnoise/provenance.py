"""What made a file: checksums of the code a stage runs, and checks of the provenance its inputs carry.

A resume state or an input file is only usable by a stage when it was made by the same code and
settings and belongs to the run the stage is working on; these helpers say so, naming the file and
the mismatch, instead of letting a foreign file through.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gradnoise.errors import InputError
from gradnoise.io import ALL

PACKAGE_DIR = Path(__file__).resolve().parent


def imported_modules(module: str, root: Path = PACKAGE_DIR) -> list[Path]:
    """The source files of `module` (a name under ``gradnoise``) and of every ``gradnoise`` module it
    imports, transitively (read from the import statements, so that it does not depend on what the
    running process happens to have loaded)."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        rel = Path(*name.split("."))
        path = root / rel.with_suffix(".py")
        if not path.exists():
            path = root / rel / "__init__.py"
        if not path.exists():
            continue
        seen[name] = path
        todo.extend(_gradnoise_imports(path))
    return sorted(seen.values())


def _gradnoise_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gradnoise":
                names += [a.name for a in node.names]
            elif node.module.startswith("gradnoise."):
                names.append(node.module.removeprefix("gradnoise."))
        elif isinstance(node, ast.Import):
            names += [
                a.name.removeprefix("gradnoise.")
                for a in node.names
                if a.name.startswith("gradnoise.")
            ]
    return names


def code_digest(module: str = "train", root: Path = PACKAGE_DIR) -> str:
    """SHA-256 (16 hex digits) over the names and contents of the code `module` runs."""
    h = hashlib.sha256()
    for path in imported_modules(module, root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_provenance(
    path: str | Path, found: Mapping[str, Any], expected: Mapping[str, Any]
) -> None:
    """Raise InputError naming `path` and every key whose value in the file differs from the one the
    stage expects (a key the file lacks counts as a mismatch)."""
    wrong = {k: (found.get(k, "<missing>"), v) for k, v in expected.items() if found.get(k) != v}
    if wrong:
        detail = "; ".join(
            f"{k}: file has {got!r}, expected {want!r}" for k, (got, want) in wrong.items()
        )
        raise InputError(f"{path}: input of another run or truncated ({detail})")


def check_checkpoint(
    path: str | Path, ckpt: Mapping[str, Any], run: Mapping[str, Any], step: int | None = None
) -> None:
    """A checkpoint written by the train stage for `run` (experiment, arm, optimizer, seed) at
    `step`: its keys, the run its settings name and its step, else InputError naming the file."""
    missing = [k for k in ("step", "status", "settings") if k not in ckpt]
    if missing:
        raise InputError(
            f"{path}: checkpoint without {', '.join(missing)} (not from the train stage)"
        )
    if ckpt["status"] == "ok" and "model" not in ckpt:
        raise InputError(f"{path}: checkpoint with status ok but no weights")
    try:
        made = json.loads(ckpt["settings"])["run"]
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(f"{path}: checkpoint whose settings do not name its run ({err})") from None
    expected = dict(run) if step is None else {**run, "step": step}
    check_provenance(path, {**made, "step": ckpt["step"]}, expected)


def check_noise_tables(path: str | Path, samples: Any, stats: Any) -> None:
    """The samples table holds P rows per (split, view, layer) of the stats table (the row counts the
    noise stage wrote), else InputError naming the file."""
    import pyarrow.compute as pc

    layers = stats.filter(pc.not_equal(stats["layer"], ALL))
    want: dict[tuple[str, str], int] = {}
    for row in layers.select(["split", "view", "P"]).to_pylist():
        key = (row["split"], row["view"])
        want[key] = want.get(key, 0) + int(row["P"])
    got: dict[tuple[str, str], int] = {}
    keys = samples.select(["split", "view"]).to_pydict()
    for key in zip(map(str, keys["split"]), map(str, keys["view"]), strict=True):
        got[key] = got.get(key, 0) + 1
    if got != want:
        diff = {k: (got.get(k, 0), want.get(k, 0)) for k in sorted(set(got) | set(want))}
        detail = "; ".join(
            f"{s}/{v}: {g} rows, stats say {w}" for (s, v), (g, w) in diff.items() if g != w
        )
        raise InputError(f"{path}: noise samples with rows missing or added ({detail})")


def check_unique_runs(tables: Mapping[str, Any], key: list[str]) -> None:
    """No two files hold rows of the same run (`key` columns): a file copied over another run's
    name would otherwise count one run twice."""
    owner: dict[tuple, str] = {}
    for path, table in tables.items():
        for k in set(zip(*(table[c].to_pylist() for c in key), strict=True)):
            if k in owner:
                named = dict(zip(key, k, strict=True))
                raise InputError(
                    f"{path}: rows of run {named}, which {owner[k]} holds too (a copy?)"
                )
            owner[k] = path
