"""Architectural insights: deterministic detectors over stored spans → grounded, narrated findings.

``model`` holds the domain values shared by the detectors (``detectors/``) and the pipeline that
scores, stores, narrates and serves them.
"""
