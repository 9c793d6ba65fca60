"""What the CLI-against-real-brokers tests share: unique names, the CLI run in-process, a profile file.

The profile file names both single-node brokers (``kafka`` and ``rabbit``) and is the only one the CLI
sees: ``WORKBENCH_CONFIG`` points at it and the test's temporary folder is the working directory, so
nothing from the developer's machine leaks in.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.brokers import endpoints
from workbench.cli import app

KAFKA_URL = f"kafka://{endpoints.KAFKA_BOOTSTRAP}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def workbench(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def write_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preamble: str = "") -> Path:
    """Write ``workbench.toml`` (``preamble`` first, then the two broker profiles) and make it the config."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "workbench.toml"
    path.write_text(
        preamble + f'[profiles.kafka]\nbroker = "{KAFKA_URL}"\n'
        f'[profiles.rabbit]\nbroker = "{endpoints.RABBIT_AMQP_URL}"\n'
        f'management_url = "{endpoints.RABBIT_MANAGEMENT_URL}"\n'
    )
    monkeypatch.setenv("WORKBENCH_CONFIG", str(path))
    return path
