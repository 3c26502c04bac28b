"""The code a stage runs, read from its imports: a rule declares these files as inputs, so editing any
module a stage imports reruns it, and no hand-kept list can drift from the imports.

A stage's code is its script, the sibling modules the script imports (`_cli`), and the transitive
closure of the package's modules they import: `import pkg.a`, `from pkg import a`, `from pkg.a import
f`, relative imports, imports inside functions (lazy imports run too) and `importlib.import_module`
with a literal name or a literal dotted name such as a registry's "pkg.studies.x:run". Importing
`pkg.a.b` runs `pkg/__init__.py` and `pkg/a/__init__.py` as well, so they count; imports under
`if TYPE_CHECKING:` never run and do not. A string literal naming a file inside the package
("data/table.npz") counts as a data file the module reads. Standard library only, so the workflow can
use it before anything else is importable.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

# A literal that names a module (optionally with an attribute): "pkg.studies.optimizers:claims".
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?$")
_FILE = re.compile(r"^[\w.-]+(/[\w.-]+)+$|^[\w-]+\.[A-Za-z0-9]+$")
_STRING = re.compile(
    r"""(["'])([\w./:-]+)\1"""
)  # a one-line literal that may name a module or file


def stage_code(script: Path | str, src: Path | str, package: str = "gradnoise") -> list[Path]:
    """The script, the sibling scripts it imports and every file of `package` (under `src`) that
    running it imports or reads, in a stable order (the script first)."""
    return list(_stage_code(Path(script).resolve(), Path(src).resolve(), package))


@functools.cache
def _stage_code(script: Path, src: Path, package: str) -> tuple[Path, ...]:
    seen: dict[Path, None] = {script: None}
    todo = [(script, None)]  # (file, its module name in the package; None for scripts)
    while todo:
        path, module = todo.pop()
        names, data_files = _read(path, module)
        seen.update(dict.fromkeys(data_files))
        for name in names:
            for dep, dep_module in _files_of(name, script.parent, src, package):
                if dep not in seen:
                    seen[dep] = None
                    todo.append((dep, dep_module))
    script_files = [p for p in seen if not p.is_relative_to(src)]
    package_files = sorted(p for p in seen if p.is_relative_to(src))
    return (*script_files, *package_files)


@functools.cache
def _files_of(
    name: str, script_dir: Path, src: Path, package: str
) -> list[tuple[Path, str | None]]:
    """The files that importing the module `name` runs (a package's __init__ and every parent's), each
    with its module name (None for a sibling script); nothing for other packages' modules."""
    parts = name.split(".")
    if parts[0] != package:
        sibling = script_dir / f"{parts[0]}.py"  # a script's sibling (`import _cli`)
        return [(sibling, None)] if len(parts) == 1 and sibling.is_file() else []
    found = []
    for i in range(1, len(parts) + 1):
        module = ".".join(parts[:i])
        base = src.joinpath(*parts[:i])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                found.append((candidate, module))
                break
        else:
            break  # not a module: an attribute (from pkg.io import FIGURES), or absent
    return found


@functools.cache
def _read(path: Path, module: str | None) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    """The module names the source at `path` imports anywhere in its body, and the package's data
    files it names. `module` is its dotted name in the package (None for a script), for relative
    imports and the package's root."""
    text = path.read_text()
    tree = ast.parse(text, filename=str(path))
    is_init = path.name == "__init__.py"
    names: list[str] = []
    # a module-level __getattr__ (PEP 562) runs only when one of its names is asked for, never when
    # the module is imported (`gradnoise.measure` loads the measurement API on first use)
    body = [
        n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "__getattr__")
    ]
    for node in _statements(body):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_init)
            if base is not None:
                names.append(base)
                names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    data_files: list[Path] = []
    for _, literal in _STRING.findall(text):
        if _DOTTED.match(literal):
            names.append(literal.split(":")[0])
        elif module is not None and _FILE.match(literal):
            root = path.parents[module.count(".") - (0 if is_init else 1)]  # top-level package
            data = (root / literal).resolve()
            if data.is_file() and data.is_relative_to(root):
                data_files.append(data)
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(data_files))


def _absolute(node: ast.ImportFrom, module: str | None, is_init: bool) -> str | None:
    """The absolute module name of `from … import …` (None for a relative import in a script)."""
    if node.level == 0:
        return node.module
    if module is None:
        return None
    package = module.split(".") if is_init else module.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        return None  # beyond the top-level package
    parts = package[: len(package) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones too (imports inside functions, classes, try and with blocks), but
    not those under `if TYPE_CHECKING:` (imports for type checkers, which never run)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _statements(stmt.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(stmt, field, ()):
                if isinstance(child, ast.stmt):
                    yield from _statements([child])
                else:  # an except handler or a match case: statements one level down
                    yield from _statements(child.body)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
