"""ClickHouse storage (embedded chDB or a server) through clickhouse-connect only."""

from otel_ai.storage.client import Storage
from otel_ai.storage.schema import Migration, SchemaContext, TableSpec, ViewSpec

__all__ = ["Migration", "SchemaContext", "Storage", "TableSpec", "ViewSpec"]
