"""`python -m otel_ai` is the same as the `otel-ai` console script."""

from __future__ import annotations

from otel_ai.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
