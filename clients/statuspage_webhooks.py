"""Calls to subscribers' webhooks, only ever to addresses the check allows.

Anyone may subscribe a webhook, so its host could name this machine or the internal network.
The check is not only made when it subscribes: DNS may answer differently later (rebinding),
so it sits in the resolver the connection itself uses. The connection goes to the addresses
that were checked and no other, while the URL's host stays the Host header and the TLS server
name. The subscribe route and the delivery activity use this one check.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from config import Settings

WEBHOOK_TIMEOUT = 10.0
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(Exception):
    """The webhook's host names an address it may not reach: retrying will not change that.

    Not an OSError, so aiohttp passes it through instead of calling it a connection error.
    """


def _embedded(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it goes."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def reachable(address: str) -> bool:
    """Whether a webhook may call this address with private webhooks off: public unicast only
    (no loopback, private, link-local, shared, reserved or multicast address)."""
    found: IPAddress = ipaddress.ip_address(address)
    inner = _embedded(found)
    if inner is not None and not reachable(str(inner)):
        return False
    return found.is_global and not found.is_multicast


def _host(url: str) -> str:
    try:
        host = URL(url).raw_host
    except ValueError as error:  # IDNA cannot spell it, a broken IPv6 literal, a bad port
        raise WebhookRefused(f"not a URL to call ({error})") from None
    if not host:
        raise WebhookRefused("the URL names no host")
    return host


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class CheckedResolver(AbstractResolver):
    """Resolves a webhook's host and refuses it unless every address it names may be called."""

    def __init__(self, private_allowed: bool, dns: AbstractResolver | None = None) -> None:
        self.private_allowed = private_allowed
        self.dns = dns or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if _literal(host):
            found = [
                ResolveResult(hostname=host, host=host, port=port, family=family, proto=0, flags=0)
            ]
        else:
            found = await self.dns.resolve(host, port, family)
        refused = sorted({r["host"] for r in found if not reachable(r["host"])})
        if refused and not self.private_allowed:
            raise WebhookRefused(
                f"the host resolves to addresses that are not public ({', '.join(refused)})"
            )
        return found

    async def close(self) -> None:
        await self.dns.close()


class StatusWebhooks:
    """Posts JSON to subscribers' webhooks through the checked resolver."""

    def __init__(self, private_allowed: bool, dns: AbstractResolver | None = None) -> None:
        self.private_allowed = private_allowed
        self.dns = dns

    def _resolver(self) -> CheckedResolver:
        return CheckedResolver(self.private_allowed, self.dns)

    async def check(self, url: str) -> None:
        """Raises WebhookRefused unless the URL's host names callable addresses only (an
        unknown host, or one IDNA cannot spell, is refused too)."""
        host = _host(url)
        try:
            await self._resolver().resolve(host, 0, socket.AF_UNSPEC)
        except (OSError, UnicodeError) as error:
            raise WebhookRefused("the host does not resolve") from error

    async def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        """One POST, no redirects; raises WebhookRefused, or aiohttp.ClientError on failure
        (a connection that failed, or an answer other than 2xx)."""
        host = _host(url)
        if _literal(host):
            # aiohttp connects to an address literal without asking any resolver.
            await self._resolver().resolve(host, 0, socket.AF_UNSPEC)
        # No DNS cache and no proxy from the environment: each connection resolves through
        # the check and goes straight to what it allowed.
        connector = aiohttp.TCPConnector(resolver=self._resolver(), use_dns_cache=False)
        timeout = aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
            http.post(url, json=body, headers=headers, allow_redirects=False) as response,
        ):
            if not 200 <= response.status < 300:
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    response.history,
                    status=response.status,
                    message=response.reason or "",
                )


def status_webhooks(settings: Settings) -> StatusWebhooks:
    return StatusWebhooks(private_allowed=settings.status_private_webhooks)
