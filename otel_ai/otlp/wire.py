"""Protobuf wire-format primitives for the code that writes protobuf by hand.

The demo's fast span encoder and the engine decoder's request framing both need them.
"""

from __future__ import annotations


def varint(n: int) -> bytes:
    """``n`` as a base-128 varint; a negative ``n`` as its 64-bit two's complement (int64)."""
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
