"""The LLM manager's typed errors (subclasses of :class:`otel_ai.errors.LLMError`).

Every provider translates its SDK's exceptions into these in exactly one function, so the router
reasons about ``retryable``, ``retry_after`` and ``counts_for_breaker`` without knowing any SDK.
"""

from __future__ import annotations

from otel_ai.errors import LLMError


class RateLimited(LLMError):
    """HTTP 429 / overloaded: retry after ``retry_after`` seconds (from ``Retry-After``)."""

    retryable = True
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthFailed(LLMError):
    """401/403: the key is missing, wrong or lacks permission. Not retryable on this deployment."""

    error_type = "auth_failed"


class Timeout(LLMError):
    """A per-call or total deadline passed (or the provider timed out)."""

    retryable = True
    error_type = "timeout"


class ContextTooLarge(LLMError):
    """The prompt does not fit the model's context window; another model may take it."""

    error_type = "context_too_large"


class ProviderUnavailable(LLMError):
    """Connection refused, 5xx, model not loadable: the provider is down for now."""

    retryable = True
    error_type = "provider_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRequest(LLMError):
    """The request itself is bad (HTTP 400 from a provider, unknown model or schema name)."""

    error_type = "invalid_request"


class BadResponse(LLMError):
    """The provider answered something unusable: malformed JSON, schema-invalid output, no text."""

    error_type = "bad_response"


class SchemaMismatch(BadResponse):
    """The reply stayed schema-invalid after the repair retry: a model-quality problem, not an
    outage, so it moves the request on without counting against the deployment's breaker."""

    error_type = "schema_mismatch"


class AllProvidersFailed(LLMError):
    """Every deployment of the fallback chain failed; ``errors`` holds (deployment, error) pairs."""

    retryable = True
    error_type = "all_providers_failed"

    def __init__(self, message: str, errors: list[tuple[str, LLMError]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def error_type(exc: BaseException) -> str:
    """Low-cardinality ``error.type`` value (GenAI semconv) for ``exc``."""
    return getattr(exc, "error_type", None) or ("timeout" if isinstance(exc, TimeoutError) else "_OTHER")


def counts_for_breaker(exc: BaseException) -> bool:
    """Failures that say the *deployment* is unhealthy (not that the request was bad)."""
    if isinstance(exc, SchemaMismatch):
        return False
    return isinstance(exc, RateLimited | AuthFailed | Timeout | ProviderUnavailable | BadResponse)
