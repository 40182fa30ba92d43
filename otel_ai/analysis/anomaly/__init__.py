"""Autoencoder anomaly detection with root-cause ranking."""
