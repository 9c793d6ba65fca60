"""The Kafka adapter's options, URLs and secrets: pure, no broker needed."""

from __future__ import annotations

import pytest

from workbench.broker import InvalidRequest
from workbench_kafka import KafkaAdapter
from workbench_kafka.options import client_properties, scrub, secret_values
from workbench_kafka.reader import start_offsets


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://", {}),
        ("kafka://broker", {"bootstrap.servers": "broker:9092"}),
        ("kafka://h1:9093,h2", {"bootstrap.servers": "h1:9093,h2:9092"}),
        ("kafka://h1:9092/", {"bootstrap.servers": "h1:9092"}),
        ("kafka://[::1]:9095", {"bootstrap.servers": "[::1]:9095"}),
        ("kafka://h:9092?timeout_s=2.5", {"bootstrap.servers": "h:9092", "timeout_s": 2.5}),
        (
            "kafka://h:9092?security.protocol=SSL&ssl.ca.location=/etc/ca.pem",
            {"bootstrap.servers": "h:9092", "security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem"},
        ),
        (
            "kafka://alice:p%40ss%3Aword@h1:9092,h2:9092?sasl.mechanism=SCRAM-SHA-512",
            {
                "bootstrap.servers": "h1:9092,h2:9092",
                "sasl.username": "alice",
                "sasl.password": "p@ss:word",
                "sasl.mechanism": "SCRAM-SHA-512",
                "security.protocol": "SASL_SSL",  # never a password in clear by guess
            },
        ),
        (
            "kafka://bob:pw@h:9092?security.protocol=SASL_PLAINTEXT",
            {
                "bootstrap.servers": "h:9092",
                "sasl.username": "bob",
                "sasl.password": "pw",
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN",
            },
        ),
    ],
)
def test_options_from_url(url, expected):
    assert KafkaAdapter.options_from_url(url) == expected
    KafkaAdapter(KafkaAdapter.options_from_url(url))  # and they are valid options


@pytest.mark.parametrize(
    "url",
    ["amqp://h", "kafka:h:9092", "kafka://h:notaport", "kafka://h:9092/path", "kafka://h?timeout_s=soon"],
)
def test_bad_urls(url):
    with pytest.raises(InvalidRequest):
        KafkaAdapter.options_from_url(url)


def test_secrets_are_marked_and_never_described():
    secret = {o.name for o in KafkaAdapter.options if o.secret}
    assert {"sasl.password", "ssl.key.password"} <= secret
    adapter = KafkaAdapter(
        {
            "bootstrap.servers": "h:9092",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "alice",
            "sasl.password": "hunter2-secret",
            "ssl.key.password": "keypass-secret",
        }
    )
    text = adapter.describe() + repr(adapter)
    assert "hunter2" not in text and "keypass" not in text
    assert adapter.describe() == "kafka://h:9092 (SASL_SSL, SCRAM-SHA-256 as alice)"
    values = secret_values(adapter.settings)
    assert scrub("boom hunter2-secret and keypass-secret", values) == "boom *** and ***"


def test_librdkafka_properties_pass_through_and_others_are_ignored():
    settings = KafkaAdapter(
        {
            "bootstrap.servers": "h:9092",
            "linger.ms": 20,
            "sasl.oauthbearer.method": "oidc",
            "debug": "broker",
            "read_only": True,  # a profile field, not for librdkafka
            "description": "prod",
        }
    ).settings
    props = client_properties(settings)
    assert props["linger.ms"] == 20
    assert props["sasl.oauthbearer.method"] == "oidc"
    assert props["debug"] == "broker"
    assert "read_only" not in props and "description" not in props
    assert "timeout_s" not in props and "delivery_timeout_s" not in props


@pytest.mark.parametrize(
    "options",
    [{"timeout_s": "ten"}, {"timeout_s": 0}, {"security.protocol": 3}, {"x.y": [1]}],
)
def test_bad_option_types(options):
    with pytest.raises(InvalidRequest):
        KafkaAdapter(options)


def test_start_offsets():
    low, high = {0: 10, 1: 0}, {0: 20, 1: 0}
    parts = [0, 1]
    assert start_offsets("beginning", 0, parts, low, high) == {0: 10, 1: 0}
    assert start_offsets("end", 0, parts, low, high) == {0: 20, 1: 0}
    assert start_offsets("offset", 5, parts, low, high) == {0: 10, 1: 0}
    assert start_offsets("offset", 15, parts, low, high) == {0: 15, 1: 0}
    assert start_offsets("offset", 99, parts, low, high) == {0: 20, 1: 0}
    assert start_offsets("last", 3, parts, low, high) == {0: 17, 1: 0}
    assert start_offsets("last", 30, parts, low, high) == {0: 10, 1: 0}
    # a timestamp past the end: -1 from offsets-for-times -> the end
    assert start_offsets("timestamp", 1, parts, low, high, {0: 12, 1: -1}) == {0: 12, 1: 0}


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("_TIMED_OUT", "Timeout"),
        ("COORDINATOR_LOAD_IN_PROGRESS", "Timeout"),  # a coordinator reloading offsets: ask again later
        ("_TRANSPORT", "Unreachable"),
        ("UNKNOWN_TOPIC_OR_PART", "NotFound"),
        ("GROUP_AUTHORIZATION_FAILED", "AccessDenied"),
    ],
)
def test_librdkafka_errors_become_the_contracts_typed_errors(code, kind):
    from confluent_kafka import KafkaError, KafkaException

    from workbench_kafka.errors import map_error

    error = map_error(KafkaException(KafkaError(getattr(KafkaError, code))), "offsets of group 'g'")
    assert type(error).__name__ == kind and str(error).startswith("offsets of group 'g': ")
