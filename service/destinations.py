"""Where the service may send a webhook: never back into the service, its network or its cloud's
metadata endpoint (SSRF). A URL is checked when a client registers it and again before every
delivery (its name may resolve elsewhere by then: DNS rebinding), and the delivery goes to the very
address that was checked.

- `https` only; plain `http` in development or when `SNP_WEBHOOK_ALLOW_HTTP` is set;
- no user name or password in the URL;
- no address in a private, link-local, multicast, reserved or unspecified range, in any mode;
- no loopback address outside development, unless the host is listed in `SNP_WEBHOOK_ALLOWED_HOSTS`
  (local receivers, tests).
The resolver is a parameter, so that tests check refusals without sending any traffic.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def numeric_resolver(host: str, port: int) -> list[str]:
    """Addresses written as numbers only: no name is looked up (SNP_WEBHOOK_RESOLVE_NAMES=false)."""
    flags = socket.AI_NUMERICHOST
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    return sorted({str(info[4][0]) for info in infos})


class RefusedDestination(ValueError):
    """Why a webhook URL may not be used (the message is safe to show: it names no address)."""


@dataclass(frozen=True)
class WebhookPolicy:
    allow_http: bool = False
    allow_loopback: bool = False  # development
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    resolver: Resolver = system_resolver


@dataclass(frozen=True)
class Destination:
    """A checked URL, and the address the delivery must connect to."""

    url: str
    host: str
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the Host header and TLS name
        stay the original host's)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _form(url: str, policy: WebhookPolicy) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination("the webhook URL is malformed") from exc
    allowed_schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed_schemes:
        raise RefusedDestination("a webhook URL must use https")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination("a webhook URL may not carry a user name or password")
    if not parts.hostname:
        raise RefusedDestination("a webhook URL needs a host")
    if port == 0:
        raise RefusedDestination("a webhook URL needs a valid port")
    return parts


def _refusal(address: Address, host: str, policy: WebhookPolicy) -> str | None:
    if address.is_loopback:
        return None if policy.allow_loopback or host in policy.allowed_hosts else "a loopback address"
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return _refusal(mapped, host, policy)
    if address.is_private or address.is_link_local or address.is_multicast or address.is_reserved:
        return "a private, link-local, multicast or reserved address"
    if address.is_unspecified or not address.is_global:
        return "an address that is not public"
    return None


async def check(url: str, policy: WebhookPolicy) -> Destination:
    """The destination of a webhook URL, or RefusedDestination. Every address the name resolves to
    must be acceptable (else a rebinding name could alternate)."""
    parts = _form(url, policy)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = await policy.resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise RefusedDestination("the webhook host does not resolve") from exc
    if not resolved:
        raise RefusedDestination("the webhook host does not resolve")
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
    for address in addresses:
        reason = _refusal(address, host, policy)
        if reason is not None:
            raise RefusedDestination(f"the webhook host resolves to {reason}")
    return Destination(url=url, host=host, address=str(addresses[0]))
