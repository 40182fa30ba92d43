"""What the receivers accept: the time range and the size limits, checked before the acknowledgement.

One rule holds for every transport, encoding and ``pipeline.ack`` mode: an acknowledged item is
stored and can be found. So whatever the store could not hold faithfully is refused here, before
the ack, never dropped after it:

* **Times.** A span's start, a log record's time (its observed time when unset) and a data
  point's time must lie in ``(now - storage.ttl_days, 2100-01-01T00:00:00Z]`` — or, with
  ``ttl_days: 0`` (no retention), in ``(1970-01-01T00:00:00Z, 2100-01-01]``. Older rows would be
  dropped by the retention TTL at the next merge; the engine's ``DateTime`` (TTL, partitions)
  wraps after 2106 and an ``Int64`` of nanoseconds after 2262, so a row stamped later would be
  stored at a wrong time. Every other time (span events, observed times, start times,
  exemplars) must be below 2^63 ns (2262-04-11), the ``DateTime64(9)`` range. Such items are
  removed from the request and reported in ``partial_success`` (reason ``time_out_of_range`` or
  ``older_than_retention``).
* **Attributes.** A resource, scope, span, event, link, log record or data point carries at most
  ``ingest.max_attributes`` attributes, each at most ``ingest.max_attribute_bytes`` encoded bytes
  (key and value; nested values included). An item over either is removed (reasons
  ``too_many_attributes``, ``attribute_too_large``); a resource or scope over it removes its items.
* **Amplification.** Resource and scope attributes are repeated on every row: the bytes they add
  over all rows of a request must stay within ``ingest.max_resource_amplification`` times the
  request's size, else the request is refused with 400 (reason ``resource_amplification``). So the
  rows of a request take at most about (amplification + 3) times its size in memory.
* **Nesting and JSON.** A protobuf request nests at most 100 messages deep (upb's limit; an
  ``AnyValue`` level is 2-3 messages), an OTLP/JSON one at most 100 objects deep; a JSON object
  with a duplicate key is refused (400, reason ``duplicate_key``), as protobuf's own JSON parser
  and the Collector's do.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from otel_ai.errors import RefusedContent

INT64_MAX = 2**63 - 1
# 2100-01-01T00:00:00Z: the engine's DateTime (TTL expressions, daily partitions) ends in 2106,
# and a TTL adds ttl_days to it; a round date well before keeps both exact.
MAX_TIME_NS = 4_102_444_800 * 10**9
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one request is checked against (``min_time_ns`` moves with the clock)."""

    min_time_ns: int = 1
    max_time_ns: int = MAX_TIME_NS
    max_attributes: int = 8192
    max_attribute_bytes: int = 1024 * 1024
    max_resource_amplification: int = 64

    @classmethod
    def now(cls, ingest_cfg: Any, ttl_days: int, now_ns: int | None = None) -> Limits:
        """The limits of ``ingest`` for a request received at ``now_ns`` (default: now)."""
        low = 1
        if ttl_days > 0:
            low = max(1, (now_ns if now_ns is not None else time.time_ns()) - ttl_days * _DAY_NS + 1)
        return cls(
            min_time_ns=low,
            max_attributes=int(ingest_cfg.max_attributes),
            max_attribute_bytes=int(ingest_cfg.max_attribute_bytes),
            max_resource_amplification=int(ingest_cfg.max_resource_amplification),
        )

    def native_args(self, body_len: int) -> dict[str, int]:
        """The same limits for the C check (``_native.check_traces``)."""
        return {
            "min_ns": self.min_time_ns,
            "max_ns": self.max_time_ns,
            "max_attrs": self.max_attributes,
            "max_attr_bytes": self.max_attribute_bytes,
            "max_expansion": self.max_resource_amplification * body_len,
        }

    def time_reason(self, t: int) -> str | None:
        """Why the row time ``t`` is refused, or None."""
        if t < self.min_time_ns:
            return "older_than_retention" if t > 0 and self.min_time_ns > 1 else "time_out_of_range"
        return "time_out_of_range" if t > self.max_time_ns else None


@dataclass(slots=True)
class Verdict:
    """The outcome of :func:`check`: items kept, removed (by reason), and the first removal."""

    items: int = 0
    reasons: Counter[str] | None = None
    first: str = ""
    changed: bool = False

    def reject(self, reason: str, n: int, where: str) -> None:
        if self.reasons is None:
            self.reasons = Counter()
        self.reasons[reason] += n
        self.changed = True
        if not self.first:
            self.first = f"{where}: {reason.replace('_', ' ')}"

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values()) if self.reasons else 0


def _attrs_reason(attrs: Any, limits: Limits, sized: bool) -> str | None:
    if len(attrs) > limits.max_attributes:
        return "too_many_attributes"
    if sized:
        cap = limits.max_attribute_bytes
        for kv in attrs:
            if kv.ByteSize() > cap:
                return "attribute_too_large"
    return None


def _any_attrs_reason(groups: Iterable[Any], limits: Limits, sized: bool) -> str | None:
    for attrs in groups:
        if (why := _attrs_reason(attrs, limits, sized)) is not None:
            return why
    return None


def _span_reason(s: Any, limits: Limits, sized: bool) -> str | None:
    if (why := limits.time_reason(s.start_time_unix_nano)) is not None:
        return why
    for ev in s.events:
        if ev.time_unix_nano > INT64_MAX:
            return "time_out_of_range"
    groups = [s.attributes, *(e.attributes for e in s.events), *(ln.attributes for ln in s.links)]
    return _any_attrs_reason(groups, limits, sized)


def _log_reason(r: Any, limits: Limits, sized: bool) -> str | None:
    if r.observed_time_unix_nano > INT64_MAX:
        return "time_out_of_range"
    if (why := limits.time_reason(r.time_unix_nano or r.observed_time_unix_nano)) is not None:
        return why
    return _attrs_reason(r.attributes, limits, sized)


def _point_reason(dp: Any, limits: Limits, sized: bool) -> str | None:
    if dp.start_time_unix_nano > INT64_MAX:
        return "time_out_of_range"
    if (why := limits.time_reason(dp.time_unix_nano)) is not None:
        return why
    exemplars = getattr(dp, "exemplars", ())  # a summary point has none
    for ex in exemplars:
        if ex.time_unix_nano > INT64_MAX:
            return "time_out_of_range"
    groups = [dp.attributes, *(ex.filtered_attributes for ex in exemplars)]
    return _any_attrs_reason(groups, limits, sized)


_SHAPE = {
    "traces": ("resource_spans", "scope_spans", "resourceSpans", "scopeSpans"),
    "logs": ("resource_logs", "scope_logs", "resourceLogs", "scopeLogs"),
    "metrics": ("resource_metrics", "scope_metrics", "resourceMetrics", "scopeMetrics"),
}


def _leaf_lists(signal: str, ss: Any) -> list[tuple[Any, str]]:
    """The repeated item fields of one scope container, with their JSON path suffix."""
    if signal == "traces":
        return [(ss.spans, "spans")]
    if signal == "logs":
        return [(ss.log_records, "logRecords")]
    out = []
    for mi, m in enumerate(ss.metrics):
        kind = m.WhichOneof("data")
        if kind is not None:
            out.append((getattr(m, kind).data_points, f"metrics[{mi}].dataPoints"))
    return out


_REASON_FN = {"traces": _span_reason, "logs": _log_reason, "metrics": _point_reason}


def check(signal: str, req: Any, limits: Limits, body_len: int) -> Verdict:
    """Remove the items of the parsed request ``req`` outside ``limits``; raise for the request.

    Raises :class:`~otel_ai.errors.RefusedContent` (400) when the request as a whole is over the
    amplification bound. Attribute sizes are only walked when the body is bigger than one
    attribute may be (the common request cannot hold an attribute over the limit).
    """
    top, scope_field, top_json, scope_json = _SHAPE[signal]
    sized = body_len > limits.max_attribute_bytes
    reason_of = _REASON_FN[signal]
    verdict = Verdict()
    expansion = 0
    for ri, rs in enumerate(getattr(req, top)):
        res_why = _attrs_reason(rs.resource.attributes, limits, sized)
        res_bytes = rs.resource.ByteSize()
        for si, ss in enumerate(getattr(rs, scope_field)):
            where = f"{top_json}[{ri}].{scope_json}[{si}]"
            why_head = res_why or _attrs_reason(ss.scope.attributes, limits, sized)
            head_bytes = res_bytes + ss.scope.ByteSize()
            for leaves, leaf_json in _leaf_lists(signal, ss):
                if why_head is not None:
                    if len(leaves):
                        verdict.reject(why_head, len(leaves), f"{where}.{leaf_json}")
                        del leaves[:]
                    continue
                bad = []
                for k, item in enumerate(leaves):
                    why = reason_of(item, limits, sized)
                    if why is not None:
                        bad.append(k)
                        verdict.reject(why, 1, f"{where}.{leaf_json}[{k}]")
                for k in reversed(bad):
                    del leaves[k]
                verdict.items += len(leaves)
                expansion += head_bytes * len(leaves)
    if expansion > limits.max_resource_amplification * body_len:
        raise RefusedContent(
            f"resource and scope attributes repeated on every row would take {expansion} bytes, over "
            f"ingest.max_resource_amplification ({limits.max_resource_amplification}) x the request's "
            f"{body_len} bytes: send fewer items per resource or smaller resource attributes",
            reason="resource_amplification",
        )
    return verdict


def reject_message(signal: str, verdict: Verdict) -> str:
    """The ``partial_success.error_message`` of the items ``check`` removed."""
    what = {"traces": "span", "metrics": "data point", "logs": "log record"}[signal]
    n = verdict.rejected
    counts = verdict.reasons or Counter()
    why = (
        "with invalid ids"
        if set(counts) == {"invalid_id"}
        else "(" + ", ".join(f"{r}: {c}" for r, c in sorted(counts.items())) + ")"
    )
    return f"rejected {n} {what}{'s' if n != 1 else ''} {why}; first: {verdict.first}"
