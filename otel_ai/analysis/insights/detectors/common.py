"""What every detector shares: window parameters, entity naming, evidence ids, SQL fragments.

Entity ids follow the topology room: a service is its ``service.name``; an uninstrumented peer is
the virtual node id the topology derives from the client span (``postgresql/orders``,
``kafka/orders``, ``api.stripe.com``); an edge is ``"caller->callee"``; an operation is
``"service:operation"``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from otel_ai.analysis.insights.model import (
    DetectContext,
    Entity,
    EntityKind,
    Evidence,
    Recommendation,
    Window,
)
from otel_ai.analysis.topology.queries import VIRTUAL_ID, VIRTUAL_KIND

__all__ = ["KEY_EXPR", "VIRTUAL_ID", "VIRTUAL_KIND", "ev_id", "examples", "node", "op", "params"]

# What a CLIENT span asks for, normalised so that N calls that differ only by literals share it:
# a DB statement through normalizeQuery (literals → ?), an HTTP call by method + route (or its
# path with ids folded), anything else (gRPC) by span name.
_STMT = (
    "if(SpanAttributes['db.query.text'] != '', SpanAttributes['db.query.text'],"
    " if(SpanAttributes['db.statement'] != '', SpanAttributes['db.statement'], SpanName))"
)
_METHOD = (
    "if(SpanAttributes['http.request.method'] != '', SpanAttributes['http.request.method'],"
    " SpanAttributes['http.method'])"
)
_PATH = (
    "replaceRegexpAll(path(if(SpanAttributes['url.full'] != '', SpanAttributes['url.full'],"
    " SpanAttributes['http.url'])), '/([0-9]+|[0-9a-fA-F-]{8,})(/|$)', '/{id}\\\\2')"
)
KEY_EXPR = f"""multiIf(
    SpanAttributes['db.system'] != '', normalizeQuery({_STMT}),
    SpanAttributes['http.route'] != '', {_METHOD} || ' ' || SpanAttributes['http.route'],
    SpanAttributes['url.full'] != '' OR SpanAttributes['http.url'] != '', {_METHOD} || ' ' || {_PATH},
    SpanName)"""

_SAFE = re.compile(r"[A-Za-z0-9_.\-/>|:{}]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/>|:]+")
_KIND_OF_VIRTUAL: dict[str, EntityKind] = {"database": "database", "messaging": "messaging"}


def naive(t: datetime) -> datetime:
    """UTC instant without tzinfo (how DateTime64 parameters are passed)."""
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def params(ctx: DetectContext, window: Window | None = None, **extra: Any) -> dict[str, Any]:
    w = window or ctx.window
    return {"db": ctx.storage.database, "start": naive(w.start), "end": naive(w.end), **extra}


def node(node_id: str, virtual_kind: str = "") -> Entity:
    """A topology node: a service, or a virtual peer of the given kind."""
    if not virtual_kind or virtual_kind == "service":
        return Entity("service", node_id)
    return Entity(_KIND_OF_VIRTUAL.get(virtual_kind, "external"), node_id)


def op(service: str, operation: str) -> Entity:
    return Entity("operation", f"{service}:{operation}")


def edge(source: str, target: str) -> Entity:
    return Entity("edge", f"{source}->{target}")


def ev_id(kind: str, key: str, figure: str) -> str:
    """A stable evidence id: the same finding yields the same ids on every run.

    Short, plain keys are used as they are (``n_plus_one:orders|…:calls``); a key with spaces or
    quotes (a statement, a route) or longer than 64 characters keeps a readable head and a hash of
    the whole, so a model can cite the id verbatim.
    """
    if len(key) > 64 or not _SAFE.fullmatch(key):
        head = _UNSAFE.sub("_", key)[:40].strip("_")
        key = f"{head}~{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    return f"{kind}:{key}:{figure}"


def key_of(*parts: str) -> str:
    return "|".join(parts)


def examples(trace_ids: Iterable[str], n: int) -> tuple[str, ...]:
    """Up to ``n`` example trace ids, in a stable order."""
    return tuple(sorted(set(trace_ids))[:n])


def evidence(
    kind: str,
    key: str,
    figure: str,
    ev_kind: Any,
    description: str,
    observed: float | str | None = None,
    baseline: float | str | None = None,
    unit: str = "",
    trace_ids: tuple[str, ...] = (),
) -> Evidence:
    value = round(observed, 3) if isinstance(observed, float) else observed
    base = round(baseline, 3) if isinstance(baseline, float) else baseline
    return Evidence(ev_id(kind, key, figure), ev_kind, description, value, base, unit, trace_ids)


def ratio_evidence(
    kind: str,
    key: str,
    figure: str,
    ev_kind: Any,
    description: str,
    observed: float,
    trace_ids: tuple[str, ...],
    baseline: float | None = None,
) -> Evidence:
    """A share (unit ``ratio``) as evidence; no baseline unless one is given."""
    return evidence(kind, key, figure, ev_kind, description, observed, baseline, "ratio", trace_ids)


def ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def recommend(action: str, rationale: str, ev: Iterable[Evidence]) -> tuple[Recommendation, ...]:
    """A finding's one recommendation, citing every piece of its evidence."""
    return (Recommendation(action, rationale, tuple(e.id for e in ev)),)
