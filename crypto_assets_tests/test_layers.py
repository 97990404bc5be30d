"""Imports go one way (DESIGN.md, Layering): contracts <- (producer, lake) <- layers (bronze, silver, gold)
<- (orchestration, glue_jobs) <- tools. Every module under crypto_assets/ and producer/ is parsed, imports
inside functions included, and each import of ours is checked against the layer it comes from."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = "crypto_assets"  # its __init__.py, which every import of a layer runs first

LAYERS_BELOW_ORCHESTRATION = {"contracts", "lake", "bronze", "silver", "gold", "ml"}
MAY_IMPORT: dict[str, set[str]] = {
    PACKAGE_ROOT: set(),
    "contracts": set(),
    "producer": {"contracts"},
    "lake": {"contracts"},
    "bronze": {"contracts", "lake"},
    "silver": {"contracts", "lake"},
    "gold": {"contracts", "lake"},
    "ml": {"contracts", "lake", "gold"},  # training on Gold (crypto_assets/ml)
    "orchestration": LAYERS_BELOW_ORCHESTRATION,
    "glue_jobs": LAYERS_BELOW_ORCHESTRATION,
    "tools": {"contracts", "producer", "lake", "bronze", "silver", "gold", "ml", "orchestration", "glue_jobs"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    files = sorted([*(REPO / "crypto_assets").rglob("*.py"), *(REPO / "producer").rglob("*.py")])
    return {module_name(f): f for f in files}


def layer_of(module: str) -> str | None:
    """The layer a module of ours belongs to (`crypto_assets.<x>` for an unknown one), None for others'."""
    parts = module.split(".")
    if parts[0] == "producer":
        return "producer"
    if parts[0] != "crypto_assets":
        return None
    if len(parts) == 1:
        return PACKAGE_ROOT
    return parts[1] if parts[1] in MAY_IMPORT else f"crypto_assets.{parts[1]}"


def imported_modules(module: str, source: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, anywhere in it; relative imports resolved, and
    `from package import name` taken as the submodule when `name` is one."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((node.lineno, sub if sub in known else base))
    return out


def violations(module: str, source: str, is_package: bool, known: set[str]) -> list[str]:
    mine = layer_of(module)
    found = []
    for line, target in imported_modules(module, source, is_package, known):
        theirs = layer_of(target)
        if theirs in (None, mine, PACKAGE_ROOT):  # others' modules, the same layer, the root (which imports none)
            continue
        if theirs not in MAY_IMPORT.get(mine, set()):
            found.append(f"{module} ({mine}) line {line} imports {target} ({theirs})")
    return found


def test_no_module_imports_a_layer_it_may_not():
    modules = our_modules()
    known = set(modules)
    found = [v for name, path in modules.items()
             for v in violations(name, path.read_text(), path.name == "__init__.py", known)]
    assert not found, "imports against the layering (DESIGN.md):\n" + "\n".join(found)


def test_every_module_belongs_to_a_known_layer():
    loose = [f"{name} ({path.relative_to(REPO)})" for name, path in our_modules().items()
             if layer_of(name) not in MAY_IMPORT or (layer_of(name) == PACKAGE_ROOT and path.name != "__init__.py")]
    assert not loose, "modules outside every layer:\n" + "\n".join(loose)


@pytest.mark.parametrize("module, is_package, source, expected", [
    ("crypto_assets.bronze.build", False, "from crypto_assets.silver.transforms import write_summary",
     ["crypto_assets.bronze.build (bronze) line 1 imports crypto_assets.silver.transforms (silver)"]),
    ("crypto_assets.lake.compaction", False, "def f():\n    import crypto_assets.silver.transforms as t\n",
     ["crypto_assets.lake.compaction (lake) line 2 imports crypto_assets.silver.transforms (silver)"]),
    ("crypto_assets.silver.build", False, "from ..gold import build\nfrom . import transforms",
     ["crypto_assets.silver.build (silver) line 1 imports crypto_assets.gold.build (gold)"]),
    ("crypto_assets.orchestration", True, "from crypto_assets import tools",
     ["crypto_assets.orchestration (orchestration) line 1 imports crypto_assets.tools (tools)"]),
    ("crypto_assets", True, "from crypto_assets.orchestration.definitions import defs",
     ["crypto_assets (crypto_assets) line 1 imports crypto_assets.orchestration.definitions (orchestration)"]),
    ("producer.run", False, "import crypto_assets.lake.store\nfrom crypto_assets.contracts import names",
     ["producer.run (producer) line 1 imports crypto_assets.lake.store (lake)"]),
    ("crypto_assets.tools.cli", False, "import producer.run\nfrom crypto_assets.orchestration import definitions", []),
    ("crypto_assets.contracts.names", False, "import numpy\nfrom crypto_assets import __version__", []),
])
def test_the_check_names_each_import_against_the_layering(module, is_package, source, expected):
    """The check itself, on made-up sources: upward imports anywhere (in functions, relative, through a
    package's `from ... import submodule`) are named; allowed and third-party ones are not."""
    known = {"crypto_assets.gold.build", "crypto_assets.silver.transforms", "crypto_assets.tools",
             "crypto_assets.orchestration.definitions", "crypto_assets.contracts.names"}
    assert violations(module, source, is_package, known) == expected


def test_the_tests_mirror_the_layers():
    """A test folder per layer (tests of `producer/` in `producer/`, of `crypto_assets/lake/` in `lake/`, ...),
    plus `support/` (what several share) and `ui/` (the browser test); no test module loose at the top
    but the repository-wide ones."""
    tests = REPO / "crypto_assets_tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == (set(MAY_IMPORT) - {PACKAGE_ROOT}) | {"support", "ui"}
    loose = {p.name for p in tests.glob("test_*.py")}
    assert loose == {"test_layers.py", "test_repository.py"}
    assert not list((tests / "support").glob("test_*.py"))
