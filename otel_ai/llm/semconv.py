"""OpenTelemetry GenAI semantic-convention names, v1.41.0 (the last release in
open-telemetry/semantic-conventions before the move to semantic-conventions-genai).

Every span attribute and metric name the LLM manager emits comes from here, so a rename (v1.42+
``gen_ai.client.inference.*``) is a change in one file.
"""

from __future__ import annotations

SEMCONV_VERSION = "1.41.0"

# Span attributes (docs/gen-ai/gen-ai-spans.md, v1.41.0)
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# Values
OPERATION_CHAT = "chat"
OUTPUT_TEXT = "text"
OUTPUT_JSON = "json"
TOKEN_INPUT = "input"
TOKEN_OUTPUT = "output"
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "local": "local",
    "embedded": "llama_cpp",
    "rules": "otel_ai.rules",
}

# Metrics (docs/gen-ai/gen-ai-metrics.md, v1.41.0) with their ExplicitBucketBoundaries advice.
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def prometheus_name(semconv_name: str, unit: str = "") -> str:
    """Prometheus form of a semconv metric name (dots → underscores, unit suffix)."""
    base = semconv_name.replace(".", "_")
    return f"{base}_{unit}" if unit else base
