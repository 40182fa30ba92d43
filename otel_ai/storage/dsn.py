"""Storage DSNs: ``chdb:///abs/path`` (embedded chDB) or ``http(s)://user:pass@host:port/db``."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def normalize_dsn(dsn: str, base_dir: Path | None = None) -> str:
    """Resolve a relative ``chdb://`` path to an absolute one (``chdb://./x`` reads ``.`` as a host)."""
    if not dsn.startswith("chdb:"):
        return dsn
    rest = (
        dsn[len("chdb:") :].lstrip("/") if dsn.startswith("chdb://./") or dsn.startswith("chdb:./") else None
    )
    if rest is not None:
        path = (
            (base_dir or Path.cwd()) / rest[2:] if rest.startswith("./") else (base_dir or Path.cwd()) / rest
        )
        return f"chdb://{path.resolve()}"
    path_part = dsn[len("chdb://") :]
    if not path_part.startswith("/"):
        return f"chdb://{((base_dir or Path.cwd()) / path_part).resolve()}"
    return dsn


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for status pages and logs."""
    if dsn.startswith("chdb:"):
        return dsn
    parts = urlsplit(dsn)
    # a password in the query (?password=...) is one too
    query = re.sub(r"(?i)((?:^|&)(?:password|passwd|pwd|secret|token)=)[^&]*", r"\1***", parts.query)
    if parts.password is None and query == parts.query:
        return dsn
    netloc = parts.hostname or ""
    if parts.username:
        netloc = (
            f"{parts.username}:***@{netloc}" if parts.password is not None else f"{parts.username}@{netloc}"
        )
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
