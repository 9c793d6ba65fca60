"""Publishing to an exchange, queue or stream: confirms, ``mandatory``, one result per event.

A part of ``RabbitMQConnection`` (a mixin on :class:`~.base.RabbitMQBase`, see ``base.py``).

One confirm channel per connection, opened again when an error closed it; up to
``publish_window`` events await their confirm at once. ``mandatory`` is set, so an event no queue
takes comes back as Unroutable. Confirms carry no offset: results have partition 0, offset None.
An event is checked before it is sent: its size against ``max_message_bytes``, and its headers and
properties against the negotiated ``frame_max`` (AMQP sends them in one frame, which it cannot
split; the broker would close the whole connection), so a bad event is refused alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp import commands as spec

from workbench.broker import (
    BrokerError,
    InvalidRequest,
    OutgoingEvent,
    PublishResult,
    Timeout,
    Unroutable,
)

from . import codec
from .base import MAX_NAME_BYTES, RabbitMQBase, Target

DEFAULT_FRAME_MAX = 131_072  # RabbitMQ's default, when the negotiated value is not at hand


class PublisherMixin(RabbitMQBase):
    """publish."""

    async def _publish_channel(self) -> AbstractChannel:
        async with self._publisher_lock:
            channel = self._publisher
            if channel is None or channel.is_closed:
                channel = await self._channel(publisher_confirms=True, on_return_raises=False)
                self._publisher = channel
            return channel

    async def publish(self, topic: str, events: Sequence[OutgoingEvent]) -> list[PublishResult]:
        """Confirmed publishing with ``mandatory`` set; one result per event, in order.

        To a queue or stream through the default exchange (routing key = its name), to an
        exchange with the event's key as routing key. Offsets: None (confirms carry none).
        """
        self._check_open()
        events = list(events)
        if not events:
            return []
        target = await self._resolve(topic, cached=True)
        to_exchange = target.kind == "exchange"
        exchange = target.name if to_exchange else ""
        results: list[PublishResult | None] = [None] * len(events)
        jobs: list[tuple[int, bytes, str, spec.Basic.Properties]] = []
        for i, event in enumerate(events):
            try:
                jobs.append((i, *self._prepare(i, event, target, to_exchange)))
            except InvalidRequest as exc:
                results[i] = PublishResult(i, error=exc)
        if jobs:
            channel = await self._publish_channel()
            failure: list[BrokerError] = []
            queue = iter(jobs)

            async def worker() -> None:
                for i, body, routing_key, properties in queue:
                    if failure and channel.is_closed:
                        results[i] = PublishResult(i, error=failure[0])
                        continue
                    results[i] = await self._publish_one(
                        channel, i, target, exchange, routing_key, body, properties, failure
                    )

            await asyncio.gather(*(worker() for _ in range(min(self._window, len(jobs)))))
            if target.kind == "stream" and any(r is not None and r.ok for r in results):
                self._filled.add(target.name)
        return [
            r if r is not None else PublishResult(i, error=BrokerError("not published")) for i, r in enumerate(results)
        ]

    def _prepare(
        self, i: int, event: OutgoingEvent, target: Target, to_exchange: bool
    ) -> tuple[bytes, str, spec.Basic.Properties]:
        where = self._where
        if not isinstance(event, OutgoingEvent):
            raise InvalidRequest(f"{where}: event {i} is not an OutgoingEvent")
        if event.partition not in (None, 0):
            raise InvalidRequest(f"{where}: event {i}: {target.label} has one partition (0), not {event.partition!r}")
        value = event.value
        if value is not None and not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidRequest(f"{where}: event {i}: the value must be bytes or None")
        body = b"" if value is None else bytes(value)
        if len(body) > self._max_bytes:
            raise InvalidRequest(
                f"{where}: event {i}: {len(body)} bytes is larger than the broker accepts ({self._max_bytes} bytes)",
                hint="the max_message_bytes option should match the broker's max_message_size",
            )
        key = event.key
        if key is not None and not isinstance(key, (bytes, bytearray, memoryview)):
            raise InvalidRequest(f"{where}: event {i}: the key must be bytes or None")
        if to_exchange:
            routing_key = ""
            if key:
                routing_key = _routing_key(bytes(key), i, where)
            key_header = key is not None and not key
        else:
            routing_key = target.name
            key_header = True
        properties = codec.properties_for(event, key_header=key_header)
        self._check_header_frame(i, event, len(body), properties)
        return body, routing_key, properties

    def _frame_max(self) -> int:
        """The largest frame the broker accepts on this connection (0: no limit), as negotiated."""
        transport = self._amqp.transport
        tune = getattr(getattr(transport, "connection", None), "connection_tune", None)
        value = getattr(tune, "frame_max", None)
        return value if isinstance(value, int) else DEFAULT_FRAME_MAX

    def _check_header_frame(
        self, i: int, event: OutgoingEvent, body_size: int, properties: spec.Basic.Properties
    ) -> None:
        """AMQP sends an event's properties and headers in one frame, which may not exceed the
        frame_max; the broker answers a larger one by closing the whole connection (frame_too_large),
        so refuse such an event here, alone, naming the limit."""
        frame_max = self._frame_max()
        if not frame_max or not codec.may_exceed_frame(event, frame_max):
            return
        size = codec.header_frame_size(body_size, properties)
        if size > frame_max:
            headers = len(event.headers or ())
            raise InvalidRequest(
                f"{self._where}: event {i}: its {headers:,} header(s) and properties take {size:,} bytes "
                f"in AMQP's header frame, more than the broker's frame_max ({frame_max:,} bytes): "
                "AMQP cannot split that frame",
                hint="send fewer or smaller headers (or move them into the value); frame_max is set in rabbitmq.conf",
            )

    async def _publish_one(
        self,
        channel: AbstractChannel,
        i: int,
        target: Target,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: spec.Basic.Properties,
        failure: list[BrokerError],
    ) -> PublishResult:
        try:
            # aiormq's AbstractChannel.basic_publish omits the ``wait`` its Channel takes.
            confirm = await channel.basic_publish(  # type: ignore[call-arg]
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
                timeout=self._delivery_timeout,
            )
        except TimeoutError:
            return PublishResult(
                i,
                error=Timeout(
                    f"{self._where}: event {i} to {target.label}: no confirm within {self._delivery_timeout:g} s",
                    hint="the broker may be blocking publishers (memory or disk alarm)",
                ),
            )
        except Exception as exc:  # noqa: BLE001
            error = self._error(exc, f"publishing to {target.label}")
            if channel.is_closed and not failure:
                failure.append(error)
            return PublishResult(i, error=error)
        if isinstance(confirm, DeliveredMessage) and isinstance(confirm.delivery, spec.Basic.Return):
            frame = confirm.delivery
            return PublishResult(
                i,
                error=Unroutable(
                    f"{self._where}: event {i} to {target.label} (routing key {routing_key!r}) was "
                    f"returned: {frame.reply_code} {frame.reply_text}",
                    hint="no queue is bound for this routing key",
                ),
            )
        if isinstance(confirm, spec.Basic.Nack):
            return PublishResult(i, error=BrokerError(f"{self._where}: event {i}: the broker refused it (nack)"))
        return PublishResult(i, partition=0, offset=None)


def _routing_key(key: bytes, i: int, where: str) -> str:
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise InvalidRequest(f"{where}: event {i}: a routing key must be UTF-8 text") from None
    if len(key) > MAX_NAME_BYTES:
        raise InvalidRequest(f"{where}: event {i}: a routing key is at most {MAX_NAME_BYTES} bytes")
    return text
