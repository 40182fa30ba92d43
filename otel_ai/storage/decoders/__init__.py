"""OTLP request bodies → rows of the contrib tables, four ways.

* :mod:`.native` — spans flattened in C into one ClickHouse ``Native`` block (the default);
* :mod:`.engine` (+ :mod:`.engine_sql`) — ClickHouse decodes the protobuf/JSON bodies itself and
  flattens them in SQL (embedded chDB only);
* :mod:`.python` — protobuf messages flattened in Python, inserted column-oriented (the reference
  and the last fallback);
* :mod:`.values` — the value encodings all of them share (the contrib exporter's ``AsString``).

The column order of every decoder is :data:`otel_ai.storage.schema.TRACE_COLUMNS` (and
``LOG_COLUMNS``), derived from the table DDL. :class:`otel_ai.storage.writer.TelemetryWriter`
chains them (native → engine/python) and counts the hand-overs.
"""
