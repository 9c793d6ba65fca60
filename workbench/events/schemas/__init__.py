"""Schema-aware decoding and encoding: Avro, Protobuf and JSON Schema values in the Confluent wire
format (through a Confluent-compatible schema registry) or raw (through local schema files).

The pieces, each with one job: :mod:`.wire` (the 5-byte header and Protobuf's message indexes),
:mod:`.formats` (a parsed schema that decodes and encodes one format), :mod:`.registry` (fetching
schemas by id or subject), :mod:`.files` (schemas mapped to topics in the profile), :mod:`.decoder`
(an event's key and value decoded once, at the read boundary).
"""
