"""Scheduled analyzers over stored telemetry: topology discovery and anomaly detection."""
