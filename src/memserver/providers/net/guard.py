"""The outbound guard: check a URL, resolve its host once, check every answer, connect to what was checked.

`check()` is the static part (scheme, host syntax, port, literal addresses in any spelling, `localhost`
names): no DNS, so a webhook URL whose host cannot be resolved right now can still be registered.
`fetch()` is the whole request under ONE deadline (resolution, connection, TLS, headers and body; a server
that drips one byte a second is cut off at the deadline, not kept alive by per-read timeouts), with a byte
budget on the body, which is read raw (`Accept-Encoding: identity`; an answer compressed anyway is refused
when its body is kept). Redirects are followed only up to `max_redirects`, each hop checked, resolved and
pinned like the first URL (documents follow a few; webhooks none: a 3xx is the receiver's answer).

Error messages are safe for clients: they say which rule refused or what failed, never an address.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import certifi
import httpx

from memserver.providers.net.addresses import (
    IPAddress,
    IPNetwork,
    is_loopback_name,
    literal_address,
    refused_class,
)
from memserver.providers.net.resolver import Resolver, ResolverBusy, SystemResolver
from memserver.providers.net.transport import PinnedTransport

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


class OutboundError(Exception):
    """An outbound request was refused or failed; the message is ours and safe to show (no address)."""


class URLRefused(OutboundError):
    """The URL breaks the policy: its scheme, its host's syntax, or the class of an address it reaches."""


class AddressRefused(URLRefused):
    """The URL's host is, or resolves to, an address of a refused class."""


class Unreachable(OutboundError):
    """The host could not be resolved, connected to, or spoken to (TLS, HTTP)."""


class TimedOut(OutboundError):
    """The request did not finish within its one deadline."""


class TooLarge(OutboundError):
    """The body is larger than the budget."""


@dataclass(frozen=True)
class OutboundPolicy:
    """What one kind of outbound request may do. `subject` names it in messages ("document URL")."""

    subject: str = "URL"
    allow_private: bool = False  # the operator switch: every address class is reachable
    allowed_networks: tuple[IPNetwork, ...] = ()  # reachable although private (an internal receiver)
    deadline_s: float = 15.0
    max_redirects: int = 0


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes  # empty when the body was discarded
    url: str  # the URL that answered (after redirects)


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """Certificate verification against certifi's roots, as httpx does by default (built once: ~10 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


class OutboundGuard:
    """Every outbound request memserver makes goes through one of these (see the package docstring)."""

    def __init__(
        self, policy: OutboundPolicy, resolver: Resolver | None = None, *, ssl_context: ssl.SSLContext | None = None
    ):
        self.policy = policy
        self.resolver: Resolver = resolver or SystemResolver()
        self._ssl = ssl_context

    # -- the static check ------------------------------------------------------------------------
    def check(self, url: str | httpx.URL) -> httpx.URL:
        """Scheme, host syntax, port and literal addresses; raises URLRefused. No DNS."""
        s = self.policy.subject
        try:
            parsed = httpx.URL(url)
            port = parsed.port
        except (httpx.InvalidURL, TypeError, ValueError):
            raise URLRefused(f"a {s} must be an http:// or https:// URL with a host") from None
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
            raise URLRefused(f"a {s} must be an http:// or https:// URL with a host")
        if port is not None and not 0 < port < 65536:
            raise URLRefused(f"a {s} has an invalid port")
        host = parsed.raw_host.decode("ascii", "replace")
        ip = literal_address(host)
        if ip is None and ("%" in host or not _HOST_NAME.match(host.lower())):  # '%': escapes, or a stray scope id
            raise URLRefused(f"a {s} must be an http:// or https:// URL with a valid host name")
        if ip is None and is_loopback_name(host):
            ip = _LOOPBACK
        if ip is not None and not self._allowed(ip):
            log.info("outbound %s refused: %s is %s", s, host, refused_class(ip) or "not allowed")
            raise AddressRefused(
                f"a {s} on a private, loopback or link-local address (or another non-public one) is refused"
            )
        return parsed

    def _allowed(self, ip: IPAddress) -> bool:
        if self.policy.allow_private:
            return True
        return refused_class(ip) is None or self._in_allowed_networks(ip)

    def _in_allowed_networks(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id:
                return False
            ip = ip.ipv4_mapped or ip  # a mapped address reaches its IPv4 host
        return any(ip.version == net.version and ip in net for net in self.policy.allowed_networks)

    async def pin(self, url: httpx.URL) -> list[IPAddress]:
        """The addresses to connect to for `url` (already `check`ed): resolved once, every one allowed."""
        host = url.raw_host.decode("ascii")
        literal = literal_address(host)
        if literal is not None:
            return [literal]
        s = self.policy.subject
        try:
            addresses = await self.resolver.resolve(host, url.port or _DEFAULT_PORTS[url.scheme])
        except ResolverBusy:
            log.warning("outbound %s refused: every host name lookup slot is taken (a name server not answering?)", s)
            raise Unreachable(
                f"a {s}'s host could not be resolved now: too many host name lookups are in progress; retry later"
            ) from None
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise Unreachable(f"a {s}'s host could not be resolved")
        for ip in addresses:
            if not self._allowed(ip):
                log.info("outbound %s refused: %s resolves to %s (%s)", s, host, ip, refused_class(ip))
                raise AddressRefused(
                    f"a {s} whose host resolves to a private, loopback or link-local address "
                    "(or another non-public one) is refused"
                )
        return addresses

    # -- the request -------------------------------------------------------------------------------
    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        max_body: int,
        body: Literal["keep", "discard"] = "keep",
    ) -> Fetched:
        """One request under the policy's single deadline. `keep`: a body over `max_body` raises TooLarge;
        `discard`: at most `max_body` bytes are read and thrown away (the status is what counts)."""
        target = self.check(url)
        try:
            async with asyncio.timeout(self.policy.deadline_s):
                for _hop in range(self.policy.max_redirects + 1):
                    got = await self._one(target, method, content, headers, max_body, body)
                    if isinstance(got, Fetched):
                        return got
                    target = self.check(got)  # a redirect: its target is checked like the first URL
                raise URLRefused(f"a {self.policy.subject} redirected more than {self.policy.max_redirects} times")
        except TimeoutError:
            raise TimedOut(self._timed_out()) from None
        except httpx.TimeoutException:
            raise TimedOut(self._timed_out()) from None
        except httpx.HTTPError as exc:
            raise Unreachable(self._failure(exc)) from None

    async def _one(
        self,
        url: httpx.URL,
        method: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        max_body: int,
        body: Literal["keep", "discard"],
    ) -> Fetched | httpx.URL:
        """One hop: the answer, or the URL a redirect points to (when redirects are followed)."""
        addresses = await self.pin(url)
        transport = PinnedTransport(url.raw_host.decode("ascii"), addresses, self._ssl or default_ssl_context())
        async with (
            httpx.AsyncClient(
                transport=transport,
                trust_env=False,  # no proxy, .netrc or CA bundle from the environment
                follow_redirects=False,
                timeout=self.policy.deadline_s,  # a backstop: the deadline around the whole request rules
            ) as client,
            client.stream(
                method, url, content=content, headers={**(headers or {}), "Accept-Encoding": "identity"}
            ) as resp,
        ):
            location = resp.headers.get("location")
            if resp.status_code in _REDIRECTS and location and self.policy.max_redirects and method == "GET":
                try:
                    return url.join(location)
                except httpx.InvalidURL:
                    raise URLRefused(f"a {self.policy.subject} redirected to an invalid URL") from None
            data = await self._read(resp, max_body, body)
            return Fetched(resp.status_code, data, str(url))

    async def _read(self, resp: httpx.Response, max_body: int, body: Literal["keep", "discard"]) -> bytes:
        s = self.policy.subject
        if body == "discard":
            seen = 0
            async for chunk in resp.aiter_raw():
                seen += len(chunk)
                if seen >= max_body:
                    break  # the rest is never read: closing the stream drops the connection
            return b""
        if resp.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            raise Unreachable(f"a {s} answered compressed although an uncompressed answer was asked for")
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            raise TooLarge(f"the answer of a {s} is larger than {max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_raw():
            size += len(chunk)
            if size > max_body:
                raise TooLarge(f"the answer of a {s} is larger than {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self) -> str:
        return f"the request to a {self.policy.subject} timed out after {self.policy.deadline_s:g} s"

    def _failure(self, exc: httpx.HTTPError) -> str:
        s = self.policy.subject
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLError):
                return f"a {s}'s TLS certificate or handshake could not be verified"
            cause = cause.__cause__ or cause.__context__
        if isinstance(exc, httpx.ConnectError):
            return f"a {s}'s host refused or did not accept the connection"
        return f"a {s}'s host did not answer with valid HTTP"
