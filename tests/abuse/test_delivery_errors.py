"""What a failed webhook delivery records (its event's `error`, each attempt's `error` in the deliveries list)
is memserver's own sentence, whatever went wrong: never the receiver's address, port or host name, the
resolver's or the TLS library's text, or an exception's name. Each failure is real: a closed port, a
receiver that never answers, one that answers garbage or plain HTTP to TLS, a resolver that fails with a
talkative error or answers an internal address. Deliveries run through the real job runner
(`test_outbound_urls.deliver`). No attempt leaves a socket open, whatever cut it short."""

from __future__ import annotations

import gc
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from memserver.config import WebhookSettings
from memserver.providers.net import IPAddress
from tests.abuse.hostile_http import HostileServer, MapResolver, answer, serving, silent
from tests.abuse.test_outbound_urls import deliver, hooks_db, hooks_db_url

__all__ = ["hooks_db", "hooks_db_url"]

# memserver's sentences: the delivery's own, then the outbound guard's (subject "webhook URL")
OURS = [
    r"delivery failed: a webhook URL's host refused or did not accept the connection",
    r"delivery failed: the request to a webhook URL timed out after [\d.]+ s",
    r"delivery failed: a webhook URL's host did not answer with valid HTTP",
    r"delivery failed: a webhook URL's TLS certificate or handshake could not be verified",
    r"delivery failed: a webhook URL's host could not be resolved",
    r"delivery failed: a webhook URL whose host resolves to a private, loopback or link-local address "
    r"\(or another non-public one\) is refused",
    r"receiver answered HTTP \d+",
]
LEAKS = ["127.0.0", "10.9.8.7", "hooks.test", "Errno", "errno", "Error:", "httpx", "httpcore", "SSL", "[", "refused)"]


class TalkativeResolver:
    """A resolver whose failure names an internal name server and host, as getaddrinfo's errors may."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(-3, f"Temporary failure resolving {host} via 10.9.8.7:53 (Errno -3)")


def garbage(conn: socket.socket, server: HostileServer) -> None:
    server.send(conn, b"SSH-2.0-OpenSSH_9.2 10.9.8.7\r\n\r\n")


@pytest.fixture
def receiver() -> Iterator[HostileServer]:
    routes = {"/silent": silent(), "/garbage": garbage, "/500": answer(500, b"internal trace at 10.9.8.7")}
    with serving(routes) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOCAL = WebhookSettings(allowed_networks=["127.0.0.1/32"], timeout_s=1.0)


def cases(port: int) -> dict[str, tuple[str, WebhookSettings, Any]]:
    """Failure -> (URL, settings, resolver); `port` is the receiver's."""
    to_local = MapResolver({"hooks.test": ["127.0.0.1"]})
    return {
        "connection refused": (f"http://hooks.test:{closed_port()}/hook", LOCAL, to_local),
        "never answers": (f"http://hooks.test:{port}/silent", LOCAL, to_local),
        "answers garbage": (f"http://hooks.test:{port}/garbage", LOCAL, to_local),
        "TLS handshake never answered": (f"https://hooks.test:{port}/500", LOCAL, to_local),
        "resolver fails": (f"http://hooks.test:{port}/hook", LOCAL, TalkativeResolver()),
        "internal address": (f"http://hooks.test:{port}/hook", WebhookSettings(timeout_s=1.0), to_local),
        "HTTP 500": (f"http://hooks.test:{port}/500", LOCAL, to_local),
    }


@pytest.mark.parametrize("name", list(cases(0)))
async def test_a_failed_delivery_says_what_failed_in_memservers_words_only(
    hooks_db: Any, receiver: HostileServer, name: str
) -> None:
    url, settings, resolver = cases(receiver.port)[name]
    row = await deliver(hooks_db, url, settings, resolver)
    gc.collect()  # a socket the attempt left open (a TLS handshake cut by the deadline did) fails this case
    assert row.status == "FAILED", name
    texts = [row.error, *(str(r.get("error")) for r in row.results or [])]
    for text in texts:
        reason = text.split(" (gave up after")[0]
        assert any(re.fullmatch(p, reason) for p in OURS), (name, text)
        assert not [leak for leak in LEAKS if leak in text], (name, text)
        assert str(receiver.port) not in text, (name, text)
