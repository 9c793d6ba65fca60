"""The RabbitMQ adapter: AMQP 0-9-1 through aio-pika, plus the management HTTP API through httpx.

What a vhost looks like here (``list_topics``)
    * exchanges (kind ``exchange``; ``amq.*`` flagged internal; the nameless default exchange is
      not listed, ``amq.default`` names it),
    * classic and quorum queues (kind ``queue``: one partition 0..depth, depth = ready +
      unacknowledged; type, consumers, consumer capacity, rates in ``metadata``),
    * streams (kind ``stream``: one partition; offsets from the statistics in the listing,
      probed exactly by ``describe_topic``).

Reading never takes a message from a consumer
    * a stream is read at any Position (``x-stream-offset``);
    * an exchange is tapped live (Position end, follow) through a temporary exclusive,
      auto-delete, capped queue;
    * a classic or quorum queue is not read (Unsupported): tap the exchange that feeds it.

Mappings, in short (details in ``codec.py``, ``reader.py``, ``publisher.py``, ``lag.py``)
    * partition: always 0; offset: the stream offset, or a per-read sequence for taps;
    * key: the routing key through a named exchange, else the ``x-workbench-key`` header;
    * headers: the AMQP table, values as bytes (strings UTF-8, other types JSON text);
    * timestamp: AMQP's, whole seconds (milliseconds are lost on publish);
    * publish results: partition 0, offset None (publisher confirms carry no offset);
    * lag of a queue: committed = messages consumed, end = committed + depth (lag = depth).

Errors name which side failed ("RabbitMQ AMQP at host:port ..." or "RabbitMQ management API at
URL ..."); a management API that cannot be used is not fatal (``connection.warnings``).
Tested against RabbitMQ 3.10 (Debian); needs the management plugin for full use, and the
stream plugin only for streams.
"""

from .adapter import RabbitMQAdapter

__all__ = ["RabbitMQAdapter"]

import logging as _logging

# aiormq/aio_pika log connection failures themselves; the adapter raises typed errors instead, so
# keep their records off stderr (Python's last-resort handler) unless the application routes them.
for _name in ("aiormq", "aio_pika"):
    _logging.getLogger(_name).addHandler(_logging.NullHandler())
