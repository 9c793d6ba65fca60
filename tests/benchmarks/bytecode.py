"""An environment for the benchmarks' child processes in which the workbench starts as an installed
copy would: from compiled bytecode.

A checkout run with PYTHONDONTWRITEBYTECODE=1 (or a __pycache__ older than the sources) compiles
every project module it imports from source on each run: ~0.13 s of CPU for `publish`, paid by the
workbench and not by a baseline whose libraries come compiled from site-packages. So the modules are
compiled once into a cache outside the tree (PYTHONPYCACHEPREFIX), which both sides then use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

COMPILE = r"""
import compileall, importlib.util, os
for name in ("workbench", "workbench_kafka", "workbench_local", "workbench_rabbitmq"):
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
        compileall.compile_dir(os.path.dirname(spec.origin), quiet=1)
"""


def compiled_env(cache: Path) -> dict[str, str]:
    """``os.environ`` with the project compiled into ``cache`` and read from there: the modules the
    children import (the checkout, first on PYTHONPATH as tests/conftest.py sets it, and the adapters
    wherever they are found)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    subprocess.run([sys.executable, "-c", COMPILE], env=env, check=True, cwd=REPO)
    return env
