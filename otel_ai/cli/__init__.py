"""The ``otel-ai`` command line. Query commands talk to the running daemon's API, never to the files."""
