"""Autoencoder anomaly detection with root-cause ranking (DESIGN.md decision 7)."""
