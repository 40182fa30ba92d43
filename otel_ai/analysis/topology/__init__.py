"""Service topology discovered with SQL over closed windows (docs/decisions/0006-topology-in-sql.md)."""
