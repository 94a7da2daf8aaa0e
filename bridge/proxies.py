"""The proxies in front of the bridge: whose forwarded headers are believed."""

from __future__ import annotations

import ipaddress
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxiesInFront:
    """``ProxyFix`` for the configured proxies: with their addresses, only for requests
    whose peer is one of them. The socket's own peer stays in ``environ["bridge.peer"]``."""

    def __init__(self, app: Any, hops: int, networks: tuple[str, ...]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops)
        self.networks = tuple(ipaddress.ip_network(n) for n in networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        environ["bridge.peer"] = peer
        if self.networks and not peer_in(peer, self.networks):
            return self.app(environ, start_response)
        return self.fixed(environ, start_response)


def peer_in(peer: str, networks: tuple[Network, ...]) -> bool:
    """Whether the address ``peer`` falls in one of ``networks``."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)
