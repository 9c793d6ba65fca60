"""Peeking at a classic or quorum queue's head: the one read that takes messages (and requeues them).

A part of ``RabbitMQConnection`` (a mixin on :class:`~.base.RabbitMQBase`, see ``base.py``).

Reading never takes a message from a queue's consumers, so ``read()`` refuses classic and quorum
queues. ``peek`` is the explicit exception, asked for by name (``workbench peek QUEUE``, after a
confirmation): the management API gets the messages and the broker requeues them at once.
"""

from __future__ import annotations

from workbench.broker import Event, InvalidRequest, Unsupported

from . import codec
from .base import RabbitMQBase


class PeekMixin(RabbitMQBase):
    """peek."""

    async def peek(self, topic: str, count: int) -> list[Event]:
        """Up to ``count`` messages of a classic or quorum queue, through the management API.

        The broker takes them and requeues them at once (``ack_requeue_true``): RabbitMQ puts a
        requeued message back at its place (closer to the head if other consumers took messages
        meanwhile), so the order stays; what changes is the redelivered flag (and a quorum
        queue's delivery count).
        """
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidRequest(f"{self._where}: peek count must be an int >= 1, got {count!r}")
        target = await self._resolve(topic)
        if target.kind != "queue":
            raise Unsupported(
                f"{self._where}: {target.label} cannot be peeked: only classic and quorum queues are",
                hint=f"read it with `workbench tail {topic}{' --follow' if target.kind == 'exchange' else ''}`",
            )
        mgmt = self._need_management(f"peeking queue {target.name!r}")
        messages = await self._mgmt_call(mgmt.get_messages(target.name, count, self._max_bytes))
        return [codec.management_event(target.name, i, m) for i, m in enumerate(messages)]


def peek_notice(queue_type: str | None) -> str:
    """What peeking (take, then requeue at once) does to a queue's messages: RabbitMQ requeues a
    message at its place (checked on 3.10), and a quorum queue counts the delivery."""
    notice = "they keep their place in the queue, but are marked redelivered, so a consumer sees them as redeliveries"
    if queue_type == "quorum":
        notice += (
            "; a quorum queue also counts a delivery attempt for each (x-delivery-count, which a "
            "delivery-limit acts on)"
        )
    return notice
