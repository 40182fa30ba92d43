"""OTLP requests that use every field the storage must round-trip, in protobuf and OTLP/JSON."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

NOW = time.time_ns() - 5 * 10**9
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
ROOT_ID = bytes.fromhex("eee19b7ec3c1b173")
CHILD_ID = bytes.fromhex("eee19b7ec3c1b174")
LINK_TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINK_SPAN = bytes.fromhex("b7ad6b7169203331")


def set_value(av: Any, value: Any) -> None:
    if isinstance(value, bool):
        av.bool_value = value
    elif isinstance(value, int):
        av.int_value = value
    elif isinstance(value, float):
        av.double_value = value
    elif isinstance(value, bytes):
        av.bytes_value = value
    elif isinstance(value, list):
        av.array_value.SetInParent()
        for v in value:
            set_value(av.array_value.values.add(), v)
    elif isinstance(value, dict):
        av.kvlist_value.SetInParent()
        for k, v in value.items():
            kv = av.kvlist_value.values.add(key=k)
            set_value(kv.value, v)
    elif value is None:
        pass
    else:
        av.string_value = value


def add_attrs(target: Any, attrs: dict[str, Any]) -> None:
    for k, v in attrs.items():
        set_value(target.add(key=k).value, v)


# Every AnyValue type, with the string the contrib exporter stores (pdata Value.AsString).
ATTRS: dict[str, Any] = {
    "str": "héllo <b>",
    "int": -42,
    "big": 9007199254740993,
    "double": 3.25,
    "double.whole": 2.0,
    "double.tiny": 1.5e-7,
    "double.huge": 1e21,
    "bool": True,
    "bytes": b"\x00\x01\xfe\xff",
    "array": ["a", 1, 2.5, False, b"\x01", None],
    "kvlist": {"z": 1, "a": 'x"y\n', "m": 0.1},
    "empty.array": [],
    "empty": None,
}
ATTRS_STORED: dict[str, str] = {
    "str": "héllo <b>",
    "int": "-42",
    "big": "9007199254740993",
    "double": "3.25",
    "double.whole": "2",
    "double.tiny": "1.5e-7",
    "double.huge": "1e+21",
    "bool": "true",
    "bytes": "AAH+/w==",
    "array": '["a",1,2.5,false,"AQ==",null]',
    "kvlist": '{"a":"x\\"y\\n","m":0.1,"z":1}',
    "empty.array": "[]",
    "empty": "",
}
RESOURCE = {"service.name": "checkout", "service.version": "1.2.3", "host.cpus": 4}
RESOURCE_STORED = {"service.name": "checkout", "service.version": "1.2.3", "host.cpus": "4"}


def _resource(rs: Any) -> None:
    add_attrs(rs.resource.attributes, RESOURCE)
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"


def _scope(ss: Any) -> None:
    ss.scope.name = "io.opentelemetry.test"
    ss.scope.version = "0.9.1"
    add_attrs(ss.scope.attributes, {"scope.attr": 7})
    ss.scope.dropped_attributes_count = 2
    ss.schema_url = "https://opentelemetry.io/schemas/1.21.0"


def traces_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs)
    ss = rs.scope_spans.add()
    _scope(ss)
    root = ss.spans.add(trace_id=TRACE_ID, span_id=ROOT_ID, name="GET /cart", kind=2)
    root.start_time_unix_nano = NOW
    root.end_time_unix_nano = NOW + 1_234_567
    root.trace_state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    root.flags = 0x301
    root.dropped_attributes_count = 1
    root.dropped_events_count = 2
    root.dropped_links_count = 3
    root.status.code = 2  # type: ignore[assignment]
    root.status.message = "boom: cart not found"
    add_attrs(root.attributes, ATTRS)
    ev = root.events.add(time_unix_nano=NOW + 1000, name="exception")
    add_attrs(ev.attributes, {"exception.type": "KeyError", "exception.escaped": False})
    ev2 = root.events.add(time_unix_nano=NOW + 2000, name="retry")
    add_attrs(ev2.attributes, {"attempt": 2})
    link = root.links.add(trace_id=LINK_TRACE, span_id=LINK_SPAN, trace_state="k=v")
    add_attrs(link.attributes, {"messaging.system": "kafka"})
    child = ss.spans.add(trace_id=TRACE_ID, span_id=CHILD_ID, parent_span_id=ROOT_ID, name="SELECT", kind=3)
    child.start_time_unix_nano = NOW + 10
    child.end_time_unix_nano = NOW + 20
    child.status.code = 1  # type: ignore[assignment]
    return req


def logs_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl)
    sl = rl.scope_logs.add()
    _scope(sl)
    rec = sl.log_records.add(time_unix_nano=NOW, observed_time_unix_nano=NOW + 5)
    rec.severity_number = 17  # type: ignore[assignment]
    rec.severity_text = "ERROR"
    rec.body.string_value = "payment failed"
    rec.trace_id = TRACE_ID
    rec.span_id = ROOT_ID
    rec.flags = 1
    rec.event_name = "payment.failure"
    rec.dropped_attributes_count = 4
    add_attrs(rec.attributes, ATTRS)
    # no timestamp → stored at the observed time; kvlist body → sorted JSON text
    rec2 = sl.log_records.add(observed_time_unix_nano=NOW + 7)
    set_value(rec2.body, {"b": 2, "a": True})
    return req


def metrics_request() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm)
    sm = rm.scope_metrics.add()
    _scope(sm)

    def point(dp: Any) -> None:
        dp.start_time_unix_nano = NOW - 10**9
        dp.time_unix_nano = NOW
        add_attrs(dp.attributes, {"http.route": "/cart", "code": 200})

    def exemplar(dp: Any) -> None:
        ex = dp.exemplars.add(time_unix_nano=NOW - 5, span_id=ROOT_ID, trace_id=TRACE_ID)
        ex.as_int = 12
        add_attrs(ex.filtered_attributes, {"user": "u1"})

    g = sm.metrics.add(name="queue.depth", description="items queued", unit="{item}")
    dp = g.gauge.data_points.add(as_int=17)
    point(dp)
    exemplar(dp)
    dp.flags = 1
    s = sm.metrics.add(name="requests", description="requests served", unit="1")
    s.sum.aggregation_temporality = 2  # type: ignore[assignment]
    s.sum.is_monotonic = True
    dp = s.sum.data_points.add(as_double=1.5)
    point(dp)
    h = sm.metrics.add(name="latency", unit="ms")
    h.histogram.aggregation_temporality = 1  # type: ignore[assignment]
    hp = h.histogram.data_points.add(count=6, sum=21.5, min=0.5, max=9.0)
    hp.bucket_counts.extend([1, 3, 2])
    hp.explicit_bounds.extend([1.0, 5.0])
    point(hp)
    exemplar(hp)
    e = sm.metrics.add(name="latency.exp", unit="ms")
    e.exponential_histogram.aggregation_temporality = 2  # type: ignore[assignment]
    ep = e.exponential_histogram.data_points.add(count=5, sum=12.0, scale=3, zero_count=1, min=0.1, max=7.0)
    ep.positive.offset = -2
    ep.positive.bucket_counts.extend([1, 2])
    ep.negative.offset = 1
    ep.negative.bucket_counts.extend([1])
    point(ep)
    sy = sm.metrics.add(name="gc.pause", unit="s")
    sp = sy.summary.data_points.add(count=10, sum=2.5)
    sp.quantile_values.add(quantile=0.5, value=0.2)
    sp.quantile_values.add(quantile=0.99, value=0.9)
    point(sp)
    return req


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hexify(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_FIELDS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex().upper()  # hex is case-insensitive (spec)
            else:
                _hexify(v)
    elif isinstance(node, list):
        for v in node:
            _hexify(v)


def to_json(req: Any, *, int64_as_numbers: bool = False, enum_names: bool = False) -> bytes:
    """OTLP/JSON per the spec: hex ids, int64 as strings (or numbers), enums as ints (or names)."""
    doc = MessageToDict(req, use_integers_for_enums=not enum_names)
    _hexify(doc)
    if int64_as_numbers:
        _numbers(doc)
    doc["someFutureField"] = {"ignored": True}
    return orjson.dumps(doc)


def _numbers(node: Any) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k.endswith("UnixNano") and isinstance(v, str):
                node[k] = int(v)
            else:
                _numbers(v)
    elif isinstance(node, list):
        for v in node:
            _numbers(v)


def mutate(rnd: Any, good: bytes, max_ops: int, max_len: int) -> bytes:
    """``good`` after 1..max_ops random byte flips, cuts and splices of up to ``max_len`` bytes."""
    body = bytearray(good)
    for _ in range(rnd.randint(1, max_ops)):
        i = rnd.randrange(len(body))
        op = rnd.randrange(3)
        if op == 0:
            body[i] = rnd.randrange(256)
        elif op == 1:
            del body[i : i + rnd.randint(1, max_len)]
        else:
            body[i:i] = rnd.randbytes(rnd.randint(1, max_len))
    return bytes(body)
