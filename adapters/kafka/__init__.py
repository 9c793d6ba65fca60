"""The Kafka adapter (confluent-kafka / librdkafka). See ``adapter.py`` and ``connection.py`` (which names its parts)."""

from .adapter import KafkaAdapter

__all__ = ["KafkaAdapter"]
