"""``encoding_drift``: one service whose instances export different OTLP encodings (protobuf vs
JSON, recorded per span in ``IngestEncoding``) — what users debug when they switch exporters."""

from __future__ import annotations

from otel_ai.analysis.insights.detectors.config import DetectorsConfig
from otel_ai.analysis.insights.detectors.drift import drifts, finding
from otel_ai.analysis.insights.model import DetectContext, Finding, Kind

ACTION = (
    "Align the OTLP exporter of every {service} instance on one protocol (e.g. "
    "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}, what most of its spans use); mixed encodings usually mean a "
    "half-rolled-out config and can differ in attribute types and dropped data"
)
# A recorded variant (encoding/transport) → the exporter setting that sends it.
PROTOCOL = {"protobuf/grpc": "grpc", "protobuf/http": "http/protobuf", "json/http": "http/json"}


class EncodingDriftDetector:
    kind: Kind = "encoding_drift"

    def __init__(self, config: DetectorsConfig) -> None:
        self.cfg = config.encoding_drift

    def detect(self, ctx: DetectContext) -> list[Finding]:
        found = (
            finding(
                "encoding_drift", svc, rows, "encoding", _action(str(rows[0]["variant"])), self.cfg.min_traces
            )
            for svc, rows in drifts(ctx, "encoding", self.cfg)
        )
        return [f for f in found if f is not None]


def _action(major: str) -> str:
    return ACTION.replace("{protocol}", PROTOCOL.get(major, major))
