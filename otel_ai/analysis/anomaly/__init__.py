"""Autoencoder anomaly detection with root-cause ranking (docs/decisions/0007-anomaly-estimator-contract.md)."""
