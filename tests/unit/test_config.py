from pathlib import Path

import pytest

from workbench import config
from workbench.errors import ConfigError, ExitCode, ReadOnlyError, exit_code_for

EXAMPLE = """
default_profile = "dev"
[profiles.dev]
broker = "local:events.db"
[profiles.prod-orders]
broker = "amqps://ops:${RABBIT_PASSWORD}@rabbit.internal:5671/orders"
read_only = true
[profiles.explicit]
adapter = "local"
path = "other.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workbench.toml"
    path.write_text(text)
    return path


def test_no_file_means_the_embedded_local_default(isolated_home):
    cfg = config.load_config()
    assert cfg.path is None
    target = config.resolve(cfg.profile(None))
    assert target.adapter == "local"
    assert target.options["path"] == str(isolated_home / "data" / "event-workbench" / "events.db")


def test_working_directory_file_wins_and_default_profile_is_used(isolated_home):
    write(isolated_home, EXAMPLE)
    cfg = config.load_config()
    assert cfg.path == isolated_home / "workbench.toml"
    target = config.resolve(cfg.profile(None))
    assert (target.profile.name, target.adapter) == ("dev", "local")
    assert target.options["path"] == str(isolated_home / "events.db")  # relative to the profile file


def test_user_config_dir_is_the_fallback(isolated_home):
    user_dir = isolated_home / "config" / "event-workbench"
    user_dir.mkdir(parents=True)
    write(user_dir, EXAMPLE)
    assert config.load_config().path == user_dir / "workbench.toml"


def test_adapter_plus_options_profile(isolated_home):
    write(isolated_home, EXAMPLE)
    target = config.resolve(config.load_config().profile("explicit"))
    assert target.adapter == "local" and target.options["path"] == str(isolated_home / "other.db")


def test_relative_local_path_is_beside_the_profile_file_not_the_working_directory(isolated_home, monkeypatch):
    user_dir = isolated_home / "config" / "event-workbench"
    user_dir.mkdir(parents=True)
    write(user_dir, "[profiles.scratch]\nadapter = 'local'\npath = 'scratch.db'\n")
    monkeypatch.chdir(isolated_home / "config")
    target = config.resolve(config.load_config().profile(None))
    assert target.options["path"] == str(user_dir / "scratch.db")


def test_env_interpolation_only_for_the_profile_used(isolated_home, monkeypatch):
    write(isolated_home, EXAMPLE)
    cfg = config.load_config()  # RABBIT_PASSWORD unset: loading and listing still work
    monkeypatch.delenv("RABBIT_PASSWORD", raising=False)
    assert "***" in cfg.profiles["prod-orders"].shown_broker()
    profile = config.Profile(name="p", adapter="local", options={"path": "${DB_DIR}/x.db"}, source="f.toml")
    with pytest.raises(ConfigError, match=r"f.toml: profile 'p', field 'path': environment variable DB_DIR is not set"):
        config.resolve(profile, environ={})
    assert config.resolve(profile, environ={"DB_DIR": "/d"}).options["path"] == "/d/x.db"


def test_unknown_profile_lists_the_known_ones(isolated_home):
    write(isolated_home, EXAMPLE)
    with pytest.raises(ConfigError, match="unknown profile 'nope'") as err:
        config.load_config().profile("nope")
    assert "dev, explicit, prod-orders" in err.value.hint
    assert exit_code_for(err.value) == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[profiles.x\nbroker='a'", r"invalid TOML: .*line 1"),
        (
            "[profiles.x]\nread_only = 'yes'\nbroker='local:a'",
            r"\[profiles.x\]: field 'read_only' must be bool, got str",
        ),
        ("[profiles.x]\nread_only = true", r"\[profiles.x\]: needs broker"),
        ("default_profile = 'y'\n[profiles.x]\nbroker='local:a'", r"default_profile = 'y' names no profile"),
        ("colour = 1", r"unknown top-level key 'colour'"),
    ],
)
def test_bad_files_name_the_problem(isolated_home, text, message):
    write(isolated_home, text)
    with pytest.raises(ConfigError, match=message) as err:
        config.load_config()
    assert str(isolated_home / "workbench.toml") in str(err.value)


def test_read_only_profile_refuses_changes(isolated_home):
    write(isolated_home, EXAMPLE)
    profile = config.load_config().profile("prod-orders")
    with pytest.raises(ReadOnlyError, match="read-only: refusing to publish"):
        profile.ensure_writable("publish")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqps://ops:s3cret@rabbit:5671/orders", "amqps://ops:***@rabbit:5671/orders"),
        ("kafka://h:9092?sasl.password=s3cret&acks=all", "kafka://h:9092?sasl.password=***&acks=all"),
        ("amqp://guest@h/", "amqp://guest@h/"),
        ("local:/x/events.db", "local:/x/events.db"),
    ],
)
def test_secrets_are_masked(url, shown):
    assert config.mask_url(url) == shown
    assert "s3cret" not in config.mask_url(url)


def test_secret_options_are_masked():
    masked = config.mask_options(
        {"sasl.password": "s3cret", "api_key": "k", "bootstrap.servers": "h:9092", "url": "amqp://u:s3cret@h/v"}
    )
    assert masked == {
        "sasl.password": "***",
        "api_key": "***",
        "bootstrap.servers": "h:9092",
        "url": "amqp://u:***@h/v",
    }


@pytest.mark.parametrize(
    "url", ["amqp://ops:hun#ter2@rabbit/", "amqp://ops:a/b?c@rabbit:5672/v", "kafka://u:p@ss@h:9092"]
)
def test_passwords_with_url_delimiters_are_masked_whole(url):
    shown = config.mask_url(url)
    assert "ter2" not in shown and "a/b?c" not in shown and "p@ss" not in shown
    assert shown.endswith(url.rsplit("@", 1)[1])


def test_reprs_never_show_options_or_broker_urls():
    profile = config.Profile(
        name="p", adapter="kafka", broker="kafka://u:s3cret@h:9092", options={"sasl.password": "s3cret"}
    )
    target = config.Target(profile=profile, adapter="kafka", options={"sasl.password": "s3cret"})
    assert "s3cret" not in repr(profile) + repr(target)


def test_nested_and_pem_options_are_masked():
    masked = config.mask_options({"ssl.key.pem": "-----BEGIN", "tls": {"password": "x", "ca": "/ca.pem"}})
    assert masked == {"ssl.key.pem": "***", "tls": {"password": "***", "ca": "/ca.pem"}}
