"""Typed shapes of a topology (the contract of ``/api/v1/topology`` and ``/api/v1/services``, docs/topology.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

NodeKind = Literal["service", "database", "messaging", "external"]


class Window(BaseModel):
    start: str = Field(description="RFC 3339, inclusive")
    end: str = Field(description="RFC 3339, exclusive")
    covered_start: str | None = Field(
        default=None, description="first span in the window (RFC 3339); rates start counting here"
    )
    covered_seconds: float | None = Field(
        default=None, description="seconds from covered_start to min(end, now): the divisor of every *_rate"
    )


class Operation(BaseModel):
    name: str
    kind: str
    span_count: int
    error_count: int
    error_rate: float = Field(description="error_count / span_count (a ratio, 0..1)")
    rate: float = Field(description="spans per second over the covered window (same as request_rate)")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    # One naming scheme across nodes, edges, operations and services (docs/api.md): every
    # object has request_count and request_rate (per second) next to its own counts.
    @computed_field(description="calls of this operation: span_count")  # type: ignore[prop-decorator]
    @property
    def request_count(self) -> int:
        return self.span_count

    @computed_field(description="request_count per second over the covered window")  # type: ignore[prop-decorator]
    @property
    def request_rate(self) -> float:
        return self.rate


class Node(BaseModel):
    id: str = Field(description="service name, or a stable peer id such as postgresql/orders")
    name: str
    kind: NodeKind
    instrumented: bool = Field(description="false for virtual nodes seen only from their callers")
    span_count: int
    request_count: int = Field(description="server/consumer/root spans (virtual: calls received)")
    request_rate: float = Field(description="requests per second over the covered window")
    error_count: int
    error_rate: float = Field(description="error_count / span_count (virtual nodes: / request_count)")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    operations: list[Operation] = Field(default_factory=list)
    encodings: dict[str, int] = Field(default_factory=dict)
    transports: dict[str, int] = Field(default_factory=dict)


class Edge(BaseModel):
    source: str
    target: str
    kind: str = Field(description="http, grpc (rpc.system), database, messaging or call")
    target_kind: NodeKind
    destination: str = Field(default="", description="messaging system/destination of the edge")
    call_count: int
    request_rate: float = Field(description="call_count per second over the covered window")
    error_count: int
    error_rate: float = Field(description="error_count / call_count (a ratio, 0..1)")
    p50_ms: float | None = Field(description="server side (the child span)")
    p95_ms: float | None
    p99_ms: float | None
    client_count: int = Field(description="calls whose parent is a CLIENT/PRODUCER span")
    client_p50_ms: float | None
    client_p95_ms: float | None
    client_p99_ms: float | None
    via_links: int = Field(description="calls paired through span links rather than parent ids")

    @computed_field(description="the same as call_count (one name across object kinds)")  # type: ignore[prop-decorator]
    @property
    def request_count(self) -> int:
        return self.call_count


class Topology(BaseModel):
    window: Window
    nodes: list[Node]
    edges: list[Edge]
    snapshot_at: str | None = Field(default=None, description="set when served from a stored snapshot")


class Service(BaseModel):
    name: str
    span_count: int
    request_count: int
    request_rate: float
    error_count: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    encodings: dict[str, int]
    transports: dict[str, int]
    operations: list[Operation]


class ServicesResponse(BaseModel):
    window: Window
    services: list[Service]


class EdgeChange(BaseModel):
    source: str
    target: str
    kind: str
    a: Edge
    b: Edge
    reasons: list[str]


class TopologyDiff(BaseModel):
    a: Window
    b: Window
    new_nodes: list[str]
    vanished_nodes: list[str]
    new_edges: list[Edge]
    vanished_edges: list[Edge]
    changed_edges: list[EdgeChange]
