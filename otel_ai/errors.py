"""The one error tree of otel-ai.

Every error the package raises on purpose derives from :class:`OtelAiError` and says whether a
retry may help (``retryable``). Foreign exceptions are translated in one place per dependency
(``raise StorageError(...) from exc``) so callers never catch clickhouse-connect, grpc or SDK
exceptions directly.
"""

from __future__ import annotations


class OtelAiError(Exception):
    """Base of every otel-ai error."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class ConfigError(OtelAiError):
    """Invalid configuration; the message names the YAML key (e.g. ``pipeline.queue_size``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DecodeError(OtelAiError):
    """An OTLP payload (or other input) could not be decoded; never retryable.

    ``reason`` labels the refusal in the receivers' metrics (``invalid`` unless a subclass says).
    """

    reason = "invalid"


class RefusedContent(DecodeError):
    """Decodable OTLP the store could not hold faithfully (a limit, a time out of range): 400."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadTooLarge(DecodeError):
    """A body is larger than the configured limit after decompression (HTTP 413)."""


class UnsupportedMediaType(DecodeError):
    """A Content-Type or Content-Encoding we do not accept (HTTP 415)."""


class StorageError(OtelAiError):
    """ClickHouse (embedded or remote) failed. Connection problems are retryable."""


class InstanceLocked(OtelAiError):
    """Another otel-ai holds this store or spool; the daemon must not start on it."""


class OverloadedError(OtelAiError):
    """The bounded queue is full: the sender should retry after ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidParameter(OtelAiError):
    """A bad API parameter (HTTP 400); the message names the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


class NotFound(OtelAiError):
    """A requested entity does not exist (HTTP 404)."""


class Unauthorized(OtelAiError):
    """A request to ``/api/*`` without the configured bearer token (HTTP 401)."""


class DetectorError(OtelAiError, ValueError):
    """Anomaly detector misuse or failure (e.g. scoring before ``fit``); a ``ValueError`` too, as
    scikit-learn's estimator contract expects of bad input."""


class LLMError(OtelAiError):
    """Base of the LLM manager's errors; see :mod:`otel_ai.llm.errors` for the subclasses."""
