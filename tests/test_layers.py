"""The import rules README.md's package map states: the core stays plain, the runner is the edge."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ssmri"
CORE = ("physics", "transforms", "models", "losses", "data", "evaluation", "checkpoints")
#: The core's Lightning classes, named in the README beside their packages.
LIGHTNING_IN_CORE = ("data/datamodule.py", "checkpoints/io.py", "checkpoints/resume.py")
FRAMEWORKS = ("lightning", "hydra", "omegaconf")


def imported(path: Path) -> set[str]:
    """The absolute module names ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (PACKAGE / package).rglob("*.py"))


def test_every_package_of_the_map_exists():
    on_disk = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert on_disk == {*CORE, "lit", "runner", "report", "conf"}
    top_level = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_level == {"errors", "atomic", "seeding"}


@pytest.mark.parametrize("path", modules(*CORE), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_core_imports_no_framework_and_no_edge(path):
    names = imported(path)
    edge = sorted(name for name in names if within(name, "ssmri.lit", "ssmri.runner", "benchmarks"))
    assert not edge, f"{path.relative_to(PACKAGE)} imports the edge: {edge}"
    if str(path.relative_to(PACKAGE)) not in LIGHTNING_IN_CORE:
        frameworks = sorted(name for name in names if within(name, *FRAMEWORKS))
        assert not frameworks, f"{path.relative_to(PACKAGE)} imports {frameworks}"


def test_only_the_entry_points_import_the_runner():
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not within(".".join(path.relative_to(PACKAGE).parts), "runner")
        and any(within(name, "ssmri.runner") for name in imported(path))
    )
    assert importers == ["__init__.py"]  # it registers the config resolvers
    for script in ("train.py", "eval.py", "predict.py"):
        assert "ssmri.runner.cli" in imported(PACKAGE.parent / script)


def test_nothing_in_the_package_imports_the_benchmarks():
    importers = [p for p in PACKAGE.rglob("*.py") if any(within(n, "benchmarks") for n in imported(p))]
    assert not importers
