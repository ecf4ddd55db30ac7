"""Listen addresses, spelled once.

Settings use PostgreSQL's `listen_addresses` spelling ('*' for every interface, or a
comma-separated list); an HTTP server binds one address, and a client or Prometheus
probes a concrete one.
"""

from __future__ import annotations

EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - how a socket spells "every IPv4 interface"
WILDCARDS = ("", "*", "0.0.0.0", "::")  # noqa: S104 - recognised, not bound
LOOPBACK = "127.0.0.1"


def bind_host(listen_addresses: str) -> str:
    """What an HTTP server binds: the first address listed; '*' is every interface, and
    'localhost' the IPv4 loopback (an HTTP server binds one address)."""
    first = listen_addresses.split(",")[0].strip()
    if first in ("", "*"):
        return EVERY_INTERFACE
    return LOOPBACK if first == "localhost" else first


def probe_host(listen_addresses: str) -> str:
    """Where a local client reaches a server bound per `listen_addresses`: the loopback for
    a wildcard, else the address it binds."""
    host = bind_host(listen_addresses)
    return LOOPBACK if host in WILDCARDS else host


def url_host(host: str) -> str:
    """A host as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host
