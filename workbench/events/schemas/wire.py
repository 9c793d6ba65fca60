"""The Confluent wire format: a magic byte 0, the schema id (4 bytes, big-endian), then the payload.

Protobuf payloads start with the *message indexes*: which message of the schema file the payload is,
as a path of indexes (``[0]`` is the first top-level message). They are written as a zig-zag varint
count followed by zig-zag varint indexes, and ``[0]`` alone is shortened to the single byte ``0``.
"""

from __future__ import annotations

MAGIC = 0
HEADER_SIZE = 5


class WireError(ValueError):
    """The bytes after the magic byte do not make a valid header."""


def split(data: bytes | None) -> tuple[int, memoryview] | None:
    """``(schema_id, payload)`` when ``data`` is in the wire format, else None (a plain value)."""
    if data is None or len(data) < HEADER_SIZE or data[0] != MAGIC:
        return None
    return int.from_bytes(data[1:HEADER_SIZE], "big"), memoryview(data)[HEADER_SIZE:]


def frame(schema_id: int, payload: bytes, indexes: list[int] | None = None) -> bytes:
    """The wire bytes of a payload; ``indexes`` for Protobuf (``None`` for the other formats)."""
    head = bytes((MAGIC,)) + schema_id.to_bytes(4, "big")
    if indexes is None:
        return head + payload
    return head + encode_indexes(indexes) + payload


def _zigzag_varint(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_indexes(indexes: list[int]) -> bytes:
    if indexes == [0]:
        return b"\x00"
    return _zigzag_varint(len(indexes)) + b"".join(_zigzag_varint(i) for i in indexes)


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise WireError("the message indexes end early")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise WireError("a message index is longer than a 64-bit varint")


def decode_indexes(payload: memoryview) -> tuple[list[int], memoryview]:
    """``(indexes, message bytes)`` of a Protobuf payload."""
    count, pos = _read_varint(payload, 0)
    if count == 0:
        return [0], payload[pos:]
    if count < 0 or count > 100:
        raise WireError(f"implausible message index count {count}")
    indexes = []
    for _ in range(count):
        index, pos = _read_varint(payload, pos)
        if index < 0:
            raise WireError(f"negative message index {index}")
        indexes.append(index)
    return indexes, payload[pos:]
