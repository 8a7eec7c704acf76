"""A lean HTTP/1.1 keep-alive client: one connection per worker, Content-Length framing."""

from __future__ import annotations

import asyncio
import contextlib
import time


class HttpConn:
    def __init__(self, host: str, port: int, key: str):
        self.host, self.port = host, port
        self.head = (
            f"Host: {host}:{port}\r\nAuthorization: Token {key}\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\nConnection: keep-alive\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(
            b"POST " + path + b" HTTP/1.1\r\n" + self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = -1
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            return status, b"".join(parts)
        return status, (await self.reader.readexactly(length)) if length > 0 else b""


async def http_run(
    base_url: str, key: str, path: str, bodies: list[bytes], concurrency: int
) -> tuple[list[float], list[tuple[int, bytes]], float]:
    """Send every body once, ``concurrency`` requests in flight; returns latencies, responses, wall time."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    conns = [HttpConn(host, int(port), key) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in conns))
    n = len(bodies)
    lat = [0.0] * n
    out: list[tuple[int, bytes]] = [(0, b"")] * n
    todo = iter(range(n))
    bpath = path.encode()

    async def worker(conn: HttpConn) -> None:
        for i in todo:  # one shared iterator: each request is sent exactly once
            t0 = time.perf_counter()
            try:
                out[i] = await conn.post(bpath, bodies[i])
            except (OSError, asyncio.IncompleteReadError) as exc:
                out[i] = (-1, repr(exc).encode())
                await conn.close()
                await conn.open()
            lat[i] = time.perf_counter() - t0

    t_start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t_start
    await asyncio.gather(*(c.close() for c in conns))
    return lat, out, wall
