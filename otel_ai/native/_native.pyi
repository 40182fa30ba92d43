"""Types of the compiled native trace decoder (``_native.c``)."""

from collections.abc import Sequence

class Unsupported(Exception): ...

def traces(payloads: Sequence[tuple[bytes, str, str, str]], fd: int = -1) -> tuple[bytes | int, int]: ...
def json_traces_to_protobuf(body: bytes) -> bytes: ...
def check_traces(
    body: bytes,
    min_ns: int = 0,
    max_ns: int = 2**64 - 1,
    max_attrs: int = 2**64 - 1,
    max_attr_bytes: int = 2**64 - 1,
    max_expansion: int = 2**64 - 1,
) -> int: ...
def json_traces_checked(
    body: bytes,
    min_ns: int = 0,
    max_ns: int = 2**64 - 1,
    max_attrs: int = 2**64 - 1,
    max_attr_bytes: int = 2**64 - 1,
    max_expansion: int = 2**64 - 1,
) -> tuple[bytes, int]: ...
def go_float(x: float) -> str: ...
