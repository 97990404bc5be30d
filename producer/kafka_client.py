"""How the producer's Kafka client is configured: delivery guarantees, batching, partitioning.

:func:`client_config` is the kafka-python ``KafkaProducer`` configuration ``KafkaSink`` opens:
acks=all, idempotent, retried until delivered (:data:`DELIVERY_TIMEOUT_MS`), batched by
``linger_ms`` / ``batch_size``, reconnecting within a second, with Kafka's default key
partitioning cached per key (:class:`CachedKeyPartitioner`).
"""

from __future__ import annotations

__all__ = ["DELIVERY_TIMEOUT_MS", "CachedKeyPartitioner", "client_config"]

# Long enough for any broker outage the buffer bound can ride out: kafka-python retries a
# batch until this expires, so records are kept (bounded by us), not expired after 2 minutes.
DELIVERY_TIMEOUT_MS = 24 * 3600 * 1000


class CachedKeyPartitioner:
    """Kafka's default key partitioning (murmur2, as the Java client), computed once per key.

    kafka-python's pure-Python murmur2 costs microseconds per record; a feed has a handful of
    keys, so the answer is cached per (topic, key, partition count).
    """

    def __init__(self) -> None:
        from kafka.partitioner import DefaultPartitioner

        self._default = DefaultPartitioner()
        self._cache: dict[tuple, int] = {}

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
        if serialized_key is None:
            return self._default.partition(topic, key, serialized_key, value, serialized_value, cluster)
        parts = cluster.partitions_for_topic(topic)
        cache_key = (topic, serialized_key, len(parts) if parts else 0)
        partition = self._cache.get(cache_key)
        if partition is None:
            partition = self._default.partition(topic, key, serialized_key, value, serialized_value, cluster)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[cache_key] = partition
        return partition


def _make_partitioner():
    """A CachedKeyPartitioner that is also a kafka-python Partitioner (kafka imported on first use)."""
    from kafka.partitioner import Partitioner

    class _Cached(CachedKeyPartitioner, Partitioner):
        pass

    return _Cached()


def client_config(bootstrap_servers: str, linger_ms: int, batch_size: int, **extra) -> dict:
    """``KafkaProducer`` keyword arguments; ``extra`` overrides any of them."""
    config = {
        "bootstrap_servers": bootstrap_servers,
        "acks": "all",
        "retries": 2_147_483_647,
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
        "linger_ms": linger_ms,
        "batch_size": batch_size,
        "max_in_flight_requests_per_connection": 5,
        "enable_idempotence": True,
        "compression_type": None,
        "partitioner": _make_partitioner(),
        "client_id": "crypto-producer",
        "bootstrap_timeout_ms": 10_000,
        "max_block_ms": 10_000,
        # Reconnect within a second of the broker coming back, not after 30 s of backoff.
        "reconnect_backoff_max_ms": 1_000,
    }
    config.update(extra)
    return config
