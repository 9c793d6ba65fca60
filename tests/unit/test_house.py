"""The house is kept by tools: lint and format (ruff), types (mypy), layers and cycles (import-linter).

Their configuration lives in pyproject.toml; each runs here as the command a developer would type,
so a new import cycle, a layer crossed, a type error or an unformatted file fails the test command
with the tool's own words.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["workbench", "adapters", "tests"]


LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("-m", "ruff", "check", *SOURCES), id="ruff-check"),
        pytest.param(("-m", "ruff", "format", "--check", *SOURCES), id="ruff-format"),
        pytest.param(("-m", "mypy", "workbench", "adapters"), id="mypy"),
        pytest.param(("-c", LINT_IMPORTS, "--no-cache"), id="import-linter"),
    ],
)
def test_the_tool_finds_nothing(argv):
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"


def test_every_package_of_the_tree_is_installed():
    """pyproject.toml lists the packages (the adapters install under prefixed names): none left out."""
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapped = set(setuptools["packages"]), setuptools["package-dir"]
    installed = {mapped.get(name, name.replace(".", "/")) for name in listed}
    in_tree = {
        str(init.parent.relative_to(REPO))
        for top in ("workbench", "adapters")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert in_tree <= installed, f"packages not in pyproject.toml's [tool.setuptools] packages: {in_tree - installed}"
