"""``AnyValue`` → string exactly as the contrib exporter stores it (pdata ``Value.AsString``).

The contrib ClickHouse exporter writes every attribute value through ``pcommon.Value.AsString``:

* string as is; int in decimal; bool ``true``/``false``;
* double via ``float64AsString`` — the ES6 number format Go's ``encoding/json`` uses: shortest
  round-trip digits, fixed notation unless ``|x| < 1e-6`` or ``|x| >= 1e21``, exponent without
  leading zeros (``1e-7``, ``1e+21``); NaN/±Inf become ``json: unsupported value: NaN``;
* bytes as standard base64;
* array and kvlist as compact JSON of ``AsRaw()`` via ``encoding/json``: map keys sorted, HTML
  characters escaped (``<`` → ``\\u003c``), bytes as base64 strings, an empty value as ``null``.
  (A NaN inside an array makes Go's marshal fail, giving ``""``; we do the same.)
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any


def go_float(value: float) -> str:
    """``float64AsString`` of pdata (ES6 number formatting)."""
    if math.isnan(value):
        return "json: unsupported value: NaN"
    if math.isinf(value):
        return "json: unsupported value: +Inf" if value > 0 else "json: unsupported value: -Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    a = abs(value)
    text = repr(value)
    if a < 1e-6 or a >= 1e21:
        mant, _, exp = text.partition("e")
        if not exp:  # repr chose fixed notation; force the exponent form
            text = f"{Decimal(text):e}"
            mant, _, exp = text.partition("e")
            if "." in mant:
                mant = mant.rstrip("0").rstrip(".")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:
            digits = digits.zfill(2)
        return f"{mant}e{sign}{digits}"
    if "e" in text or "E" in text:
        return format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_ESC.update({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
for _c in range(0x20):
    _ESC.setdefault(chr(_c), f"\\u{_c:04x}")
_TABLE = str.maketrans(_ESC)


def go_json_string(text: str) -> str:
    return '"' + text.translate(_TABLE) + '"'


class _Unsupported(Exception):
    pass


def _json(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if math.isnan(raw) or math.isinf(raw):
            raise _Unsupported
        return go_float(raw)
    if isinstance(raw, str):
        return go_json_string(raw)
    if isinstance(raw, bytes):
        return '"' + base64.b64encode(raw).decode() + '"'
    if isinstance(raw, list):
        return "[" + ",".join(_json(x) for x in raw) + "]"
    items = sorted(raw.items())
    return "{" + ",".join(go_json_string(k) + ":" + _json(v) for k, v in items) + "}"


def go_json(raw: Any) -> str:
    """``encoding/json.Marshal`` of an ``AsRaw()`` value; ``""`` when Go would fail (NaN/Inf)."""
    try:
        return _json(raw)
    except _Unsupported:
        return ""


def as_raw(value: Any) -> Any:
    """pdata ``Value.AsRaw`` of a protobuf ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return [as_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: as_raw(kv.value) for kv in value.kvlist_value.values}
    return None


def as_string(value: Any) -> str:
    """pdata ``Value.AsString`` of a protobuf ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return go_float(value.double_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind in ("array_value", "kvlist_value"):
        return go_json(as_raw(value))
    return ""


def attrs_map(kvs: Any) -> dict[str, str]:
    """A ``repeated KeyValue`` as the exporter's ``Map(String, String)`` (last duplicate wins)."""
    return {kv.key: as_string(kv.value) for kv in kvs}
