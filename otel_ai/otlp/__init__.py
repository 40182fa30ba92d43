"""OTLP wire format: request parsing and validation, the OTLP/JSON fix-ups, and the ``.proto``
schema ClickHouse decodes with. Shared by ``ingest`` (receivers validate) and ``storage`` (decoders
parse), so neither imports the other; depends only on ``otel_ai.errors`` and ``otel_ai.model``."""
