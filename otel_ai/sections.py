"""What every config section shares: the :class:`Section` base and the ``HostPort`` value.

Each room owns the model of its own YAML section (``otel_ai/<room>/config.py``);
:mod:`otel_ai.config` composes them. This module is a leaf so that any room may import it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def split_host_port(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` → ``(host, port)``; an IPv6 host may be bracketed (``[::1]:4317``).

    Raises ``ValueError`` naming the value when it is not HOST:PORT with a port in 0-65535.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _check_host_port(value: str) -> str:
    split_host_port(value)
    return value


# A listen address as written in the config ("127.0.0.1:4317"), checked when the config loads.
HostPort = Annotated[str, AfterValidator(_check_host_port)]
