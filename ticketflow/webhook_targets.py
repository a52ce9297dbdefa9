"""Where webhooks may post: public addresses only, unless an operator allows a target.

A webhook makes the desk send requests on an admin's say-so; a target on loopback, a private
network, link-local (cloud metadata at 169.254.169.254) or a reserved range would let it reach
services that only trust the desk's own network (server-side request forgery). So a target is
refused when its literal address, or its name (``localhost``, ``*.localhost``), is not public
when the webhook is subscribed or changed, and every address its name resolves to is checked
again before each delivery (a name may point elsewhere later). The operator allows internal
receivers with ``TICKETFLOW_WEBHOOK_ALLOWED_TARGETS`` (host names, addresses or networks).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ticketflow.errors import ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], list[str]]


def parse_allowed(value: str) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Host names (lower-cased) and networks of a comma-separated allow-list."""
    names: set[str] = set()
    networks: list[Network] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            if not all(label and label.replace("-", "").isalnum() for label in item.rstrip(".").split(".")):
                raise ValueError(f"{item!r} is neither a host name, an address nor a network") from None
            names.add(item.lower().rstrip("."))
    return frozenset(names), tuple(networks)


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


@dataclass(frozen=True)
class TargetGuard:
    """Decides whether a webhook may post to a URL."""

    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    resolve: Resolve = _resolve

    @classmethod
    def from_setting(cls, value: str, resolve: Resolve = _resolve) -> TargetGuard:
        names, networks = parse_allowed(value)
        return cls(names, networks, resolve)

    def check_url(self, url: str) -> None:
        """At subscription: refuse a URL whose host is a non-public address or a local name."""
        host, _ = self._host_port(url)
        if host in self.allowed_names:
            return
        if host == "localhost" or host.endswith(".localhost"):
            raise ValidationFailed(f"webhook target {host} is this machine: allow it with TICKETFLOW_WEBHOOK_ALLOWED_TARGETS")
        address = _literal(host)
        if address is not None:
            self._check_address(host, address)

    def check_delivery(self, url: str) -> None:
        """Before each delivery: every address the host resolves to must be public (or allowed)."""
        self.check_url(url)
        host, port = self._host_port(url)
        if host in self.allowed_names or _literal(host) is not None:
            return
        try:
            addresses = self.resolve(host, port)
        except OSError as exc:
            raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
        for text in addresses:
            self._check_address(host, ipaddress.ip_address(text.split("%", 1)[0]))

    def _check_address(self, host: str, address: Address) -> None:
        if any(address in network for network in self.allowed_networks):
            return
        mapped = getattr(address, "ipv4_mapped", None)
        if not address.is_global or address.is_multicast or (mapped is not None and not mapped.is_global):
            raise ValidationFailed(
                f"webhook target {host} is not a public address ({address}): loopback, private, link-local, multicast and"
                " reserved addresses are refused; allow it with TICKETFLOW_WEBHOOK_ALLOWED_TARGETS")

    @staticmethod
    def _host_port(url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            raise ValidationFailed(f"webhook url {url!r} names no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValidationFailed(f"webhook url {url!r} has an invalid port") from None
        return host, port


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the forms browsers and libc accept for IPv4: 2130706433, 0x7f.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
