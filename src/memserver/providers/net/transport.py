"""An httpx transport that connects only to addresses the guard has checked (a pinned transport).

httpx would resolve the host again to connect, and a rebinding name can answer differently the second
time. This transport's network backend ignores DNS: it opens the TCP connection to the checked addresses,
while everything above the socket still uses the URL's host name: the `Host` header, TLS SNI and the
certificate check. It has no proxy, reads no environment and never decompresses (httpcore does neither).
"""

from __future__ import annotations

import contextlib
import ssl
import typing
from collections.abc import AsyncIterator, Iterable, Sequence

import httpcore
import httpx

from memserver.providers.net.addresses import IPAddress

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


def _translated(exc: Exception) -> httpx.TransportError | None:
    """httpx's error for an httpcore one (as httpx's own transport maps them); the original is its cause."""
    return next((ours(str(exc)) for core, ours in _ERRORS if isinstance(exc, core)), None)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections for `host` to `addresses` (in order), and for nothing else."""

    def __init__(self, host: str, addresses: Sequence[IPAddress]):
        self._host = host.lower()
        self._addresses = list(addresses)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.lower() != self._host:  # only the checked host is connected to
            raise httpcore.ConnectError("connection to an unchecked host")
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for ip in self._addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
                return _ClosedOnCancelledTls(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ClosedOnCancelledTls(httpcore.AsyncNetworkStream):
    """A TCP stream whose socket is closed when its TLS handshake is cancelled, not only when it fails.

    httpcore closes the socket of a failed handshake (`except Exception`), but a cancelled one (the guard's
    deadline, against a receiver that accepts and never answers the ClientHello) left it open until garbage
    collection: one file descriptor per attempt."""

    def __init__(self, inner: httpcore.AsyncNetworkStream):
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 (httpcore's)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 (httpcore's)
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's stream interface)
    ) -> httpcore.AsyncNetworkStream:
        try:
            return await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            with contextlib.suppress(Exception):  # the transport is closed first, before any await
                await self._inner.aclose()
            raise

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes], close: typing.Callable[[], typing.Awaitable[None]]):
        self._stream = stream
        self._close = close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = _translated(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        await self._close()


class PinnedTransport(httpx.AsyncBaseTransport):
    """One connection pool whose connections go to the checked addresses of one host."""

    def __init__(self, host: str, addresses: Sequence[IPAddress], ssl_context: ssl.SSLContext):
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=1,
            retries=0,
            network_backend=PinnedBackend(host, addresses),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            resp = await self._pool.handle_async_request(core)
        except Exception as exc:
            mapped = _translated(exc)
            if mapped is None:
                raise
            raise mapped from exc
        stream = typing.cast(typing.AsyncIterable[bytes], resp.stream)
        close = getattr(stream, "aclose", None)
        return httpx.Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Body(stream, close if close is not None else _nothing),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _nothing() -> None:
    return None
