"""Domain values shared by every room (frozen dataclasses and Literals; no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Signal = Literal["traces", "metrics", "logs"]
Encoding = Literal["protobuf", "json"]
Transport = Literal["grpc", "http"]

SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
ENCODINGS: tuple[Encoding, ...] = ("protobuf", "json")
TRANSPORTS: tuple[Transport, ...] = ("grpc", "http")


@dataclass(frozen=True, slots=True)
class Payload:
    """One validated OTLP export request, kept in its wire encoding until it is inserted.

    ``body`` is the decompressed request body (an ``Export*ServiceRequest`` in protobuf or OTLP
    JSON). ``items`` counts spans, data points or log records accepted; ``rejected`` counts the
    ones validation removed (reported back as ``partial_success``). ``encoding`` is what the
    client sent (and what ``IngestEncoding`` records); ``wire`` is set when the body is in another
    encoding — an OTLP/JSON trace request that validation already transcoded to protobuf.
    """

    signal: Signal
    encoding: Encoding
    transport: Transport
    body: bytes
    items: int
    rejected: int = 0
    error_message: str = ""
    wire: Encoding | None = None
    # (reason, count) of the ``rejected`` items, for the receivers' metrics
    reasons: tuple[tuple[str, int], ...] = ()

    @property
    def body_encoding(self) -> Encoding:
        """The encoding ``body`` is in (decoders read this; rows record ``encoding``)."""
        return self.wire or self.encoding
