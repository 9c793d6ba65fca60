"""Profile files through the real CLI: every mistake is a precise error (file, profile, field) with
exit code 3, unknown adapter options are warned about, and a file that other users can read must
not hold a literal password."""

from __future__ import annotations

import pytest

from workbench.errors import ExitCode

from .conftest import write_profiles


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('colour = "red"\n[profiles.a]\nbroker = "local:a.db"', "unknown top-level key 'colour'"),
        ('profiles = "a"', "'profiles' must be a table"),
        ('[profiles]\na = "local:a.db"', "[profiles.a] must be a table"),
        (
            '[profiles.a]\nbroker = "local:a.db"\nread_only = "yes"',
            "[profiles.a]: field 'read_only' must be bool, got str",
        ),
        ("[profiles.a]\nbroker = 9092", "[profiles.a]: field 'broker' must be str, got int"),
        ('[profiles.a]\nadapter = ["kafka"]', "[profiles.a]: field 'adapter' must be str, got list"),
        (
            '[profiles.a]\ndescription = 1\nbroker = "local:a.db"',
            "[profiles.a]: field 'description' must be str, got int",
        ),
        ("[profiles.a]\nread_only = true", "[profiles.a]: needs broker"),
        ('default_profile = "b"\n[profiles.a]\nbroker = "local:a.db"', "default_profile = 'b' names no profile"),
        ('[profiles.a]\nbroker = "local:a.db"\n[profiles.a.x', "invalid TOML"),
        ('[profiles.a]\nadapter = "nosuch"', "unknown adapter 'nosuch'"),
        ('[profiles.a]\nbroker = "nosuch://h"', "no adapter serves URLs starting with 'nosuch:'"),
        ('[profiles.a]\nadapter = "local"\npath = 5', "profile 'a': option 'path' must be str, got int"),
        (
            '[profiles.a]\nbroker = "kafka://h:9092"\ntimeout_s = "10"',
            "profile 'a': option 'timeout_s' must be float, got str",
        ),
        (
            '[profiles.a]\nbroker = "amqp://h/"\ntap_max_length = true',
            "profile 'a': option 'tap_max_length' must be int, got bool",
        ),
        ('[profiles.a]\nbroker = "amqp://h/"\ntimeout_s = -1', "profile 'a': option 'timeout_s' must be > 0"),
    ],
)
def test_config_mistakes_are_precise_errors_with_exit_code_3(cli, text, says):
    path = write_profiles(cli.home, text)
    done = cli("--profile", "a", "topics")
    err = done.err.decode()
    assert done.code == ExitCode.CONFIG, err
    assert says in err and (str(path) in err or "unknown adapter" in err or "no adapter serves" in err), err
    assert "Traceback" not in err and done.out == b""


def test_a_missing_environment_variable_names_file_profile_field_and_variable(cli):
    path = write_profiles(
        cli.home,
        '[profiles.a]\nbroker = "amqp://ops:${SEC_TEST_UNSET_PASSWORD}@h/"\n'
        '[profiles.b]\nadapter = "kafka"\n"sasl.password" = "${SEC_TEST_UNSET_TOKEN}"\n',
    )
    cli.env.pop("SEC_TEST_UNSET_PASSWORD", None)
    cli.env.pop("SEC_TEST_UNSET_TOKEN", None)
    done = cli("--profile", "a", "topics")
    assert done.code == ExitCode.CONFIG
    assert (
        f"{path}: profile 'a', field 'broker': environment variable SEC_TEST_UNSET_PASSWORD is not set"
        in done.err.decode()
    )
    done = cli("--profile", "b", "tail", "orders")
    assert done.code == ExitCode.CONFIG
    assert (
        f"{path}: profile 'b', field 'sasl.password': environment variable SEC_TEST_UNSET_TOKEN is not set"
        in done.err.decode()
    )
    listed = cli("profiles")  # listing needs no secret
    assert listed.code == 0 and b"amqp://ops:***@h/" in listed.out


@pytest.mark.parametrize(
    ("profile", "says"),
    [
        (
            'adapter = "local"\npath = "a.db"\npth = "b.db"',
            "option 'pth' is not an option of adapter 'local': ignored (did you mean 'path'?)",
        ),
        (
            'broker = "amqp://127.0.0.1:1/"\ntimeout = 1',
            "option 'timeout' is not an option of adapter 'rabbitmq': ignored (did you mean 'timeout_s'?)",
        ),
        (
            'broker = "kafka://127.0.0.1:1?timeout_s=1"\ntimout_s = 1',
            "option 'timout_s' is neither a Kafka adapter option nor a librdkafka property",
        ),
    ],
)
def test_unknown_adapter_options_are_warned_about_every_time(cli, profile, says):
    write_profiles(cli.home, f"[profiles.a]\n{profile}\n")
    done = cli("--profile", "a", "topics", timeout=60)
    assert f"warning: profile 'a': {says}" in done.err.decode()


def test_an_unknown_librdkafka_property_is_a_precise_error(cli):
    write_profiles(cli.home, '[profiles.a]\nbroker = "kafka://127.0.0.1:1"\n"sasl.pasword" = "x"\n')
    done = cli("--profile", "a", "topics", timeout=60)
    assert done.code == ExitCode.USAGE
    assert "bad client configuration" in done.err.decode() and "sasl.pasword" in done.err.decode()


# --------------------------------------------------------------------------- file permissions

LITERAL = '[profiles.a]\nbroker = "local:a.db"\n[profiles.prod]\nbroker = "amqp://ops:hunter2-literal@rabbit/"\n'


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_readable_file_with_a_literal_password_warns_naming_the_file_and_chmod(cli, mode):
    path = write_profiles(cli.home, LITERAL, mode)
    for verb in (["topics"], ["profiles"]):
        done = cli("--profile", "a", *verb)
        assert done.code == 0, done.text
        err = done.err.decode()
        assert f"warning: {path} holds a password or secret ([profiles.prod] broker)" in err
        assert f"chmod 600 {path}" in err and f"mode {mode:o}" in err
        assert "hunter2-literal" not in done.text


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        (LITERAL, 0o600),  # private file
        ('[profiles.a]\nbroker = "local:a.db"\n[profiles.prod]\nbroker = "amqp://ops:${PW}@rabbit/"\n', 0o644),
        ('[profiles.a]\nbroker = "local:a.db"\n[profiles.k]\nadapter = "kafka"\n"sasl.password" = "${PW}"\n', 0o644),
    ],
)
def test_no_warning_for_a_private_file_or_env_references(cli, text, mode):
    write_profiles(cli.home, text, mode)
    done = cli("--profile", "a", "topics")
    assert done.code == 0 and "warning" not in done.err.decode(), done.text


@pytest.mark.parametrize(
    "secret_line",
    [
        '"sasl.password" = "s3cret-literal"',
        'password = "s3cret-literal"',
        'token = "s3cret-literal"',
        'broker = "kafka://h:9092?sasl.password=s3cret-literal"',
        'tls = { key_password = "s3cret-literal" }',
    ],
)
def test_every_kind_of_literal_secret_is_noticed(cli, secret_line):
    body = secret_line if secret_line.startswith("broker") else f'adapter = "kafka"\n{secret_line}'
    write_profiles(cli.home, f'[profiles.a]\nbroker = "local:a.db"\n[profiles.s]\n{body}\n', 0o644)
    done = cli("--profile", "a", "topics")
    assert "holds a password or secret ([profiles.s]" in done.err.decode(), done.text
    assert "s3cret-literal" not in done.text
