"""Types of the compiled native trace decoder (``_native.c``)."""

from collections.abc import Sequence
from typing import TypedDict, Unpack

class Unsupported(Exception): ...

class CheckLimits(TypedDict, total=False):
    """The ingest limits of ``check_traces`` / ``json_traces_checked`` (unset: no limit)."""

    min_ns: int
    max_ns: int
    max_attrs: int
    max_attr_bytes: int
    max_expansion: int

def traces(payloads: Sequence[tuple[bytes, str, str, str]], fd: int = -1) -> tuple[bytes | int, int]: ...
def json_traces_to_protobuf(body: bytes) -> bytes: ...
def check_traces(body: bytes, **limits: Unpack[CheckLimits]) -> int: ...
def json_traces_checked(body: bytes, **limits: Unpack[CheckLimits]) -> tuple[bytes, int]: ...
def go_float(x: float) -> str: ...
