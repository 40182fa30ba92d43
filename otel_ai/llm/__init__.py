"""The embedded multi-model LLM manager. Stands alone: imports nothing else from otel_ai except
the error tree.

    from otel_ai.llm import LLMManager, LLMConfig
    llm = LLMManager(LLMConfig())          # no keys: embedded model, then rules
    reply = await llm.generate("Explain", schema_name="anomaly-explanation", data={...})
"""

from otel_ai.llm.config import DeploymentConfig, LLMConfig
from otel_ai.llm.errors import (
    AllProvidersFailed,
    AuthFailed,
    BadResponse,
    ContextTooLarge,
    InvalidRequest,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from otel_ai.llm.manager import LLMManager
from otel_ai.llm.schemas import SCHEMAS
from otel_ai.llm.types import Chunk, LLMResponse, Message, Usage

__all__ = [
    "SCHEMAS",
    "AllProvidersFailed",
    "AuthFailed",
    "BadResponse",
    "Chunk",
    "ContextTooLarge",
    "DeploymentConfig",
    "InvalidRequest",
    "LLMConfig",
    "LLMManager",
    "LLMResponse",
    "Message",
    "ProviderUnavailable",
    "RateLimited",
    "Timeout",
    "Usage",
]
