"""Helpers shared by the tests and the benchmarks (``bench/``): real daemons on loopback ports
(:mod:`.daemons`), stores on a DSN (:mod:`.stores`), OTLP request builders (:mod:`.otlp_payloads`,
:mod:`.otlp_samples`, :mod:`.otlp_cases`) and a loopback server speaking the OpenAI/Anthropic wire
formats (:mod:`.llm_server`).

Nothing in the daemon imports this package; it lives inside ``otel_ai`` so that ``tests/`` and
``bench/`` import it the same way, from an installed or an in-place checkout.
"""
