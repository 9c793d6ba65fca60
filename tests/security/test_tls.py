"""TLS: the broker's certificate and host name are verified unless a profile explicitly says
otherwise, and then every command that uses the profile warns on stderr. No TLS broker is needed:
the options are checked as the adapters build them, and the warning comes before connecting."""

from __future__ import annotations

import ssl

import pytest

from workbench import config
from workbench.errors import ExitCode
from workbench_kafka import KafkaAdapter
from workbench_rabbitmq import options as rabbit_options

from .conftest import write_profiles

UNREACHABLE_KAFKA = "kafka://127.0.0.1:1?timeout_s=1"
UNREACHABLE_AMQPS = "amqps://127.0.0.1:1/?timeout_s=1"


def kafka_conf(**options) -> dict:
    return KafkaAdapter(options)._base_conf()


def test_kafka_verifies_certificate_and_host_name_by_default():
    conf = kafka_conf(**{"security.protocol": "SSL", "ssl.ca.location": "ca.pem"})
    assert conf["enable.ssl.certificate.verification"] is True
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    target = config.resolve(config.url_profile("kafka://broker:9093?security.protocol=SSL"))
    assert target.warnings == ()


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("ssl.endpoint.identification.algorithm", "none", "TLS host name verification is off"),
        ("enable.ssl.certificate.verification", False, "TLS certificate verification is off"),
        ("enable.ssl.certificate.verification", "false", "TLS certificate verification is off"),
    ],
)
def test_kafka_verification_off_takes_an_explicit_option_and_warns(option, value, says):
    assert kafka_conf(**{option: value})[option] == value  # the profile's choice is what librdkafka gets
    profile = config.Profile(name="insecure", adapter="kafka", options={option: value}, source="f.toml")
    warnings = config.resolve(profile).warnings
    assert len(warnings) == 1 and says in warnings[0] and warnings[0].startswith("profile 'insecure': ")


def test_rabbitmq_verifies_by_default_and_only_tls_verify_false_turns_it_off():
    default = rabbit_options.ssl_context({})
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    insecure = rabbit_options.ssl_context({"tls_verify": False})
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    assert config.resolve(config.url_profile("amqps://ops@rabbit.internal/")).warnings == ()
    profile = config.Profile(
        name="lab", adapter=None, broker="amqps://ops@rabbit.internal/", options={"tls_verify": False}, source="f.toml"
    )
    [warning] = config.resolve(profile).warnings
    assert "TLS verification is off (tls_verify = false)" in warning


@pytest.mark.parametrize(
    ("profile", "says"),
    [
        (
            f'broker = "{UNREACHABLE_KAFKA}"\n"ssl.endpoint.identification.algorithm" = "none"',
            "TLS host name verification is off",
        ),
        (
            f'broker = "{UNREACHABLE_KAFKA}"\n"enable.ssl.certificate.verification" = false',
            "TLS certificate verification is off",
        ),
        (f'broker = "{UNREACHABLE_AMQPS}"\ntls_verify = false', "TLS verification is off (tls_verify = false)"),
    ],
)
def test_every_use_of_an_insecure_profile_warns_on_stderr(cli, profile, says):
    write_profiles(cli.home, f"[profiles.lab]\n{profile}\n")
    for verb in (["topics"], ["tail", "orders"], ["lag"]):
        done = cli("--profile", "lab", *verb, timeout=60)
        assert done.code == ExitCode.UNREACHABLE, done.text  # the warning came before connecting
        assert f"warning: profile 'lab': {says}" in done.err.decode()
        assert says not in done.out.decode()


def test_a_secure_profile_does_not_warn(cli):
    write_profiles(cli.home, f'[profiles.lab]\nbroker = "{UNREACHABLE_AMQPS}"\nca_file = "ca.pem"\n')
    done = cli("--profile", "lab", "topics", timeout=60)
    assert "warning" not in done.err.decode()
