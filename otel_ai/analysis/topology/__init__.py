"""Service topology discovered with SQL over closed windows (DESIGN.md decision 6)."""
