"""Profiles and quick-connect URLs that name a schema registry or local schema files (issue 13)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench import config
from workbench.cli import app
from workbench.errors import ConfigError

REGISTRY = "http://127.0.0.1:18081/apis/ccompat/v7"


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "workbench.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_quick_connect_url_carries_the_registry_and_the_adapter_never_sees_it():
    target = config.resolve(config.url_profile(f"kafka://127.0.0.1:9092?schema_registry={REGISTRY}"))
    assert target.registry is not None and target.registry.url == REGISTRY
    assert "schema_registry" not in target.options
    assert not any("schema_registry" in w for w in target.warnings)  # not an unknown adapter option


def test_profile_fields_are_the_apps_and_secrets_come_from_the_environment(tmp_path):
    path = write(
        tmp_path,
        f"""
[profiles.prod]
broker = "kafka://127.0.0.1:9092"
schema_registry = "{REGISTRY}"
schema_registry_user = "svc"
schema_registry_password = "${{SR_PASSWORD}}"
schema_registry_ca = "ca.pem"
schema_registry_timeout_s = 2
""",
    )
    profile = config.load_config(path).profile("prod")
    assert "schema_registry" not in profile.options  # not an adapter option
    target = config.resolve(profile, {"SR_PASSWORD": "hunter2"})
    assert target.registry is not None
    assert (target.registry.user, target.registry.password, target.registry.timeout_s) == ("svc", "hunter2", 2.0)
    assert "hunter2" not in repr(target.registry)
    with pytest.raises(ConfigError, match="SR_PASSWORD"):
        config.resolve(profile, {})


def test_a_literal_registry_password_in_a_readable_file_is_warned_about(tmp_path):
    path = write(
        tmp_path,
        f'[profiles.p]\nbroker = "kafka://h:9092"\nschema_registry = "{REGISTRY}"\nschema_registry_password = "pw"\n',
        mode=0o644,
    )
    cfg = config.load_config(path)
    assert any("schema_registry_password" in w for w in cfg.warnings)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("schema_registry = 5", "field 'schema_registry' must be str"),
        ('schema_registry_timeout_s = "slow"', "must be a number"),
        ('schemas = "order.avsc"', "'schemas' must be a list"),
        ('[[profiles.p.schemas]]\nfile = "order.avsc"', "schemas entry 1: field 'topic'"),
        ('[[profiles.p.schemas]]\ntopic = "t"\nfile = "o.avsc"\npart = "header"', "'part' must be"),
        ('[[profiles.p.schemas]]\ntopic = "t"\nfile = "o.avsc"\nmesage = "x"', "unknown field 'mesage'"),
    ],
)
def test_bad_schema_fields_name_the_file_and_profile(tmp_path, body, message):
    path = write(tmp_path, f'[profiles.p]\nbroker = "kafka://h:9092"\n{body}\n')
    with pytest.raises(ConfigError, match=message) as caught:
        config.load_config(path)
    assert str(path) in str(caught.value) and "[profiles.p]" in str(caught.value)


def test_a_registry_url_that_is_not_http_is_refused():
    with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
        config.resolve(config.url_profile("kafka://h:9092?schema_registry=ftp://registry"))


def test_schema_files_are_read_beside_the_profile_file(tmp_path):
    path = write(
        tmp_path,
        '[profiles.p]\nbroker = "kafka://h:9092"\n[[profiles.p.schemas]]\ntopic = "legacy.*"\nfile = "s/o.avsc"\n',
    )
    target = config.resolve(config.load_config(path).profile("p"))
    (rule,) = target.schema_files
    assert rule.file == tmp_path / "s" / "o.avsc"
    assert rule.matches("legacy.orders", "value") and not rule.matches("legacy.orders", "key")
    assert not rule.matches("orders", "value")


@pytest.mark.parametrize(
    "url",
    [
        "kafka://127.0.0.1:9092?schema_registry=http://svc:hunter2@reg:8081",
        "kafka://127.0.0.1:9092?schema_registry=http%3A%2F%2Fsvc%3Ahunter2%40reg%3A8081",
        "kafka://u:brokerpw@127.0.0.1:9092?schema_registry=http://svc:hunter2@reg:8081",
    ],
)
def test_profiles_show_the_registry_with_its_password_masked(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, f'[profiles.p]\nbroker = "{url}"\n')
    result = CliRunner().invoke(app, ["profiles"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "brokerpw" not in result.output
    assert "svc:***@reg:8081" in result.output
    result = CliRunner().invoke(app, ["profiles", "-o", "json"])
    assert "hunter2" not in result.output and '"schema_registry": "http://svc:***@reg:8081"' in result.output


def test_verbs_that_need_a_registry_say_how_to_name_one():
    runner = CliRunner()
    result = runner.invoke(app, ["--broker", "kafka://127.0.0.1:9092", "schemas"])
    assert result.exit_code == 2 and "names no schema registry" in result.output
    result = runner.invoke(
        app, ["--broker", "kafka://127.0.0.1:9092", "publish", "t", "--value", "{}", "--value-schema", "s"]
    )
    assert result.exit_code == 2 and "need a schema registry" in result.output
