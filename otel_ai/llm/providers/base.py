"""The provider interface: capability flags plus one method that yields chunks (simonw/llm shape).

The core (router/manager) owns keys, retries, deadlines, caching, redaction and accounting; a
provider only turns a :class:`ProviderCall` into :class:`Chunk`s and translates its SDK's errors
into :mod:`otel_ai.llm.errors` in one function.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar

from otel_ai.llm.config import EXTERNAL_PROVIDERS, DeploymentConfig, LLMConfig
from otel_ai.llm.types import Chunk, ProviderCall


class Provider:
    """Base class. Subclasses set the flags and implement :meth:`execute`."""

    kind: ClassVar[str] = ""
    can_stream: ClassVar[bool] = True
    supports_json_schema: ClassVar[bool] = True
    default_context_window: ClassVar[int] = 8192

    def __init__(self, deployment: DeploymentConfig, config: LLMConfig) -> None:
        self.deployment = deployment
        self.config = config

    @property
    def external(self) -> bool:
        """True when prompts leave this machine's trust boundary (redaction applies)."""
        return self.kind in EXTERNAL_PROVIDERS

    @property
    def server_address(self) -> str | None:
        return self.deployment.base_url

    def execute(self, call: ProviderCall, *, stream: bool) -> AsyncGenerator[Chunk, None]:
        """Yield the reply: text chunks, the last one with usage and finish reason.

        With ``stream=False`` a provider may yield a single chunk holding the whole reply.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        """Provider-specific health details (never secrets)."""
        return {}


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())
