"""The Kafka adapter against the real broker and Kafka's own tools (tests/brokers/*.sh).

Needs Kafka on 127.0.0.1:9092: ``bash tests/brokers/brokers.sh up``. Without it these tests fail
(they do not skip). Every test uses its own uniquely named topics and groups and deletes its
topics, so they can share the broker with other test runs.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.brokers import endpoints
from workbench.broker import InvalidRequest, OutgoingEvent, Position, Unreachable
from workbench_kafka import KafkaAdapter

pytestmark = pytest.mark.kafka

BOOTSTRAP = endpoints.KAFKA_BOOTSTRAP


def require_kafka() -> None:
    if not endpoints.port_open(endpoints.KAFKA_HOST, endpoints.KAFKA_PORT):
        pytest.fail(
            f"Kafka does not answer on {BOOTSTRAP}: run `bash tests/brokers/brokers.sh up`",
            pytrace=False,
        )


def tool(name: str, *args: str, input_text: str | None = None) -> str:
    done = endpoints.kafka_tool(name, *args, timeout=90, input_text=input_text)
    assert done.returncode == 0, f"{name} {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def conn():
    require_kafka()
    connection = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def make_topic(conn):
    """``await make_topic(partitions)`` -> a new topic name; deleted after the test."""
    created: list[str] = []

    async def make(partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = unique("it-kafka")
        await conn.create_topic(name, partitions, config)
        created.append(name)
        return name

    yield make
    admin = await KafkaAdapter({"bootstrap.servers": BOOTSTRAP}).connect()
    try:
        for name in created:
            try:
                await admin.delete_topic(name)
            except Exception:  # noqa: BLE001 - best-effort cleanup
                pass
    finally:
        await admin.close()


async def read_all(conn, topic: str, start: Position | None = None) -> list:
    start = Position.beginning() if start is None else start
    events = []
    async for batch in conn.read(topic, start):
        events.extend(batch)
    return events


def parse_describe(text: str) -> dict[tuple[str, int], tuple[str, str, str]]:
    """kafka-consumer-groups.sh --describe -> {(topic, partition): (CURRENT, LOG-END, LAG)}."""
    rows: dict[tuple[str, int], tuple[str, str, str]] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0] == "GROUP" and "CURRENT-OFFSET" in cells:
            header = cells
            continue
        if header is None or len(cells) < 6:
            continue
        row = dict(zip(header, cells, strict=False))
        rows[(row["TOPIC"], int(row["PARTITION"]))] = (
            row["CURRENT-OFFSET"],
            row["LOG-END-OFFSET"],
            row["LAG"],
        )
    return rows


def as_tool_cells(committed: int | None, end: int, lag: int | None) -> tuple[str, str, str]:
    return (
        "-" if committed is None else str(committed),
        str(end),
        "-" if lag is None else str(lag),
    )


# ------------------------------------------------------------------------------- lag


async def test_lag_matches_kafka_consumer_groups(conn, make_topic):
    topic = await make_topic(3)
    counts = {0: 5, 1: 7, 2: 4}
    events = [OutgoingEvent(b"v", partition=p) for p, n in counts.items() for _ in range(n)]
    assert all(r.ok for r in await conn.publish(topic, events))

    group = unique("it-lag")
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group,
            "client.id": "it-lag-member",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(consumer.assignment()) < 3:
            assert time.monotonic() < deadline, "the consumer did not get its 3 partitions"
            consumer.poll(0.1)
        # Partition 2 is assigned to the member but never committed: "-" in the tool.
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 7)],
            asynchronous=False,
        )

        (lag,) = await conn.lag([group])
        ours = {(p.topic, p.partition): as_tool_cells(p.committed, p.end, p.lag) for p in lag.partitions}
        theirs = parse_describe(tool("kafka-consumer-groups", "--describe", "--group", group))
        assert ours == theirs
        assert ours[(topic, 2)] == ("-", "4", "-")
        assert lag.state == "Stable"
        assert lag.total == 3

        with pytest.raises(InvalidRequest, match="active member"):
            await conn.commit_offsets(group, {(topic, 0): 0})

        (info,) = [g for g in await conn.groups() if g.group_id == group]
        assert info.state == "Stable"
        (member,) = info.members
        assert member.client_id == "it-lag-member"
        assert member.assignment == ((topic, 0), (topic, 1), (topic, 2))
    finally:
        consumer.close()

    # No member any more: both show the committed partitions only.
    (lag,) = await conn.lag([group])
    assert lag.state == "Empty"
    ours = {(p.topic, p.partition): as_tool_cells(p.committed, p.end, p.lag) for p in lag.partitions}
    theirs = parse_describe(tool("kafka-consumer-groups", "--describe", "--group", group))
    assert ours == theirs == {(topic, 0): ("2", "5", "3"), (topic, 1): ("7", "7", "0")}
    # The broker is shared: leave no group behind.
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    (deleted,) = admin.delete_consumer_groups([group], request_timeout=10).values()
    await asyncio.to_thread(deleted.result, 15)


# ------------------------------------------------------------------------------- console tools


async def test_console_producer_events_read_back_exactly(conn, make_topic):
    topic = await make_topic(1)
    lines = [
        'trace:abc,ce_type:order.created|k1|{"n": 1}',
        "h:x|k2|plain text with spaces",
        "h:|k3|ünïcödé ✓",
    ]
    await asyncio.to_thread(
        tool,
        "kafka-console-producer",
        "--topic",
        topic,
        "--reader-property",
        "parse.key=true",
        "--reader-property",
        "key.separator=|",
        "--reader-property",
        "parse.headers=true",
        "--reader-property",
        "headers.delimiter=|",
        input_text="\n".join(lines) + "\n",
    )
    events = await read_all(conn, topic)
    assert [(e.key, e.value, e.headers) for e in events] == [
        (b"k1", b'{"n": 1}', (("trace", b"abc"), ("ce_type", b"order.created"))),
        (b"k2", b"plain text with spaces", (("h", b"x"),)),
        (b"k3", "ünïcödé ✓".encode(), (("h", b""),)),
    ]
    assert [e.offset for e in events] == [0, 1, 2]
    assert all(e.timestamp and e.metadata["timestamp_type"] == "CreateTime" for e in events)


async def test_console_consumer_reads_what_the_adapter_published(conn, make_topic):
    topic = await make_topic(1)
    published = [
        OutgoingEvent(b"value-1", key=b"key-1", headers=(("a", b"1"), ("b", b"2")), timestamp=1_700_000_000_001),
        OutgoingEvent(b"value-2", key=b"key-2", timestamp=1_700_000_000_002),
        OutgoingEvent(b"value-3", key=None, headers=(("only", b"h"),), timestamp=1_700_000_000_123),
    ]
    results = await conn.publish(topic, published)
    assert [(r.partition, r.offset) for r in results] == [(0, 0), (0, 1), (0, 2)]
    out = await asyncio.to_thread(
        tool,
        "kafka-console-consumer",
        "--topic",
        topic,
        "--partition",
        "0",
        "--offset",
        "earliest",  # assign(): no consumer group
        "--max-messages",
        "3",
        "--timeout-ms",
        "20000",
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.headers=true",
        "--formatter-property",
        "print.timestamp=true",
        "--formatter-property",
        "key.separator=|",
        "--formatter-property",
        "null.literal=<null>",
    )
    assert out.splitlines() == [
        "CreateTime:1700000000001|a:1,b:2|key-1|value-1",
        "CreateTime:1700000000002|NO_HEADERS|key-2|value-2",
        "CreateTime:1700000000123|only:h|<null>|value-3",
    ]


# ------------------------------------------------------------------------------- Kafka specifics


async def test_bounded_read_ends_after_transaction_markers(conn, make_topic):
    """Control records occupy the last offsets: the read still ends, aborted events unseen."""
    topic = await make_topic(1)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": unique("it-txn")})
    await asyncio.to_thread(producer.init_transactions, 30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, f"committed-{i}".encode(), partition=0)
    await asyncio.to_thread(producer.commit_transaction, 30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", partition=0)
    await asyncio.to_thread(producer.flush, 30)  # written, then aborted
    await asyncio.to_thread(producer.abort_transaction, 30)
    # offsets: 0-2 committed, 3 commit marker, 4 aborted, 5 abort marker (markers land
    # asynchronously after commit/abort returns)
    deadline = time.monotonic() + 10
    while (await conn.describe_topic(topic)).partitions[0].end < 6:
        assert time.monotonic() < deadline, "the transaction markers never landed"
        await asyncio.sleep(0.05)

    events = await asyncio.wait_for(read_all(conn, topic), 10)
    assert [e.value for e in events] == [b"committed-0", b"committed-1", b"committed-2"]
    assert await asyncio.wait_for(read_all(conn, topic, Position.last(1)), 10) == []
    assert await asyncio.wait_for(read_all(conn, topic, Position.at_offset(3)), 10) == []


@pytest.mark.parametrize(
    "limit",
    [None, "2000"],
    ids=["client-limit", "topic-max.message.bytes"],
)
async def test_too_large_event_fails_alone(conn, make_topic, limit):
    topic = await make_topic(1, None if limit is None else {"max.message.bytes": limit})
    big = b"x" * (2_000_000 if limit is None else 5000)
    results = await conn.publish(topic, [OutgoingEvent(b"small-1"), OutgoingEvent(big), OutgoingEvent(b"small-2")])
    assert results[0].ok and results[2].ok, results
    assert isinstance(results[1].error, InvalidRequest)
    assert "too large" in str(results[1].error).lower()
    assert sorted(e.value for e in await read_all(conn, topic)) == [b"small-1", b"small-2"]


# ------------------------------------------------------------------------------- no group


async def test_tail_never_creates_a_consumer_group(conn, make_topic):
    topic = await make_topic(2)
    # Ten per partition, so that the last 3 of each are there (keyless events may all go to one).
    assert all(r.ok for r in await conn.publish(topic, [OutgoingEvent(b"x", partition=i % 2) for i in range(20)]))
    before = set(tool("kafka-consumer-groups", "--list").split())

    assert len(await read_all(conn, topic)) == 20
    got = 0
    reader = conn.read(topic, Position.last(3), follow=True)
    try:
        async for batch in reader:
            got += len(batch)
            if got >= 6:
                break
        assert got == 6
        # Listed while the follow read (its consumer) is still open.
        during = set(tool("kafka-consumer-groups", "--list").split())
    finally:
        await reader.aclose()

    # Other test runs may share the broker: only groups a read could have made are ours.
    new = {g for g in during - before if g.startswith("workbench-tail-")}
    assert not new, f"a read made consumer groups: {new}"
    assert not endpoints.kafka_group_ids("workbench-tail-")


# ------------------------------------------------------------------------------- unreachable


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never answers (a hung broker)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_unreachable_broker_fails_in_bounded_time(kind, silent_port):
    address = "127.0.0.1:1" if kind == "refused" else f"127.0.0.1:{silent_port}"
    adapter = KafkaAdapter({"bootstrap.servers": address, "timeout_s": 2})
    started = time.monotonic()
    with pytest.raises(Unreachable) as caught:
        await adapter.connect()
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 2, f"took {elapsed:.1f} s"
    assert address in str(caught.value)


async def test_secrets_never_shown():
    adapter = KafkaAdapter(
        KafkaAdapter.options_from_url(
            "kafka://alice:s3cr3t-pw@127.0.0.1:1?timeout_s=1&sasl.mechanism=SCRAM-SHA-512"
            "&security.protocol=SASL_PLAINTEXT"
        )
    )
    assert "s3cr3t-pw" not in adapter.describe()
    assert "s3cr3t-pw" not in repr(adapter)
    with pytest.raises(Unreachable) as caught:
        await adapter.connect()
    assert "s3cr3t-pw" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
