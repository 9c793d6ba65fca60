"""The Kafka adapter (confluent-kafka / librdkafka). See ``adapter.py`` and ``connection.py``."""

from .adapter import KafkaAdapter

__all__ = ["KafkaAdapter"]
