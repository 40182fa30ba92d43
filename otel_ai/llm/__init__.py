"""The embedded multi-model LLM manager. Stands alone: imports nothing else from otel_ai."""
