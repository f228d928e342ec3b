"""The package layering of docs/architecture.md, enforced: no module imports a package above it.

Imports inside functions count too (a function-level import must not hide an upward edge). The
root ``avparse/__init__.py`` (a lazy re-export of ``parse``) and ``__main__.py`` are the entry
points and stand outside the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "avparse"

# lowest first; the same order as docs/architecture.md
LAYERS = (
    "errors", "utils", "vocab", "data", "eval", "media", "teachers", "features", "model",
    "harvest", "train", "temporal", "parsing", "synthetic", "demo", "cli",
)  # fmt: skip
RANK = {name: i for i, name in enumerate(LAYERS)}
ENTRY_POINTS = {"__init__", "__main__"}


def _package_of(module: str) -> str | None:
    """``avparse.data.llp`` -> ``data``; None for the root package itself."""
    parts = module.split(".")
    if parts[0] != "avparse" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "avparse":  # ``from avparse import vocab`` names a package
                found += [(node.lineno, f"avparse.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_layer() -> None:
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in _modules()}
    unranked = sorted(tops - set(RANK) - ENTRY_POINTS)
    assert not unranked, f"packages missing from LAYERS (and docs/architecture.md): {unranked}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_import(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    if own in ENTRY_POINTS:
        return
    upward = []
    for line, module in _imports(path):
        target = _package_of(module)
        if target is None or target == own or target not in RANK:
            continue
        if RANK[target] > RANK[own]:
            upward.append(f"{path.relative_to(SRC)}:{line} imports {module} ({target} > {own})")
    assert not upward, "\n".join(upward)


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from avparse.cli.main import main\n    import avparse.train\n")
    assert [m for _, m in _imports(module)] == ["avparse.cli.main", "avparse.train"]
