"""SSRF: every outbound request (document parts, webhook deliveries) goes through one guard.

The guard resolves a host once through memserver's resolver port, checks every answer, and connects to
the address it checked. The tests use real local servers (127.0.0.1 plays the internal host, 127.0.0.2
a second one: the "metadata service" a rebinding name points to later) and inject hostile resolvers;
a refused URL must never reach any server, and no error names an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import trustme

from memserver.config import WebhookSettings
from memserver.domain.jobs import JobKind
from memserver.embedded_postgres import EmbeddedPostgres
from memserver.errors import BadRequest
from memserver.providers.documents.reader import DocumentError, DocumentReader
from memserver.providers.embedder.base import Embedder
from memserver.providers.net import OutboundError, OutboundGuard, OutboundPolicy, Resolver
from memserver.providers.registry import Providers
from memserver.providers.webhooks.sender import WebhookSender
from memserver.services import jobs, webhooks
from memserver.storage.db import Database
from memserver.storage.repositories.jobs import JobRepository
from memserver.storage.repositories.webhooks import WebhookRepository
from tests.abuse.hostile_http import (
    HostileServer,
    MapResolver,
    RebindingResolver,
    answer,
    drip,
    flood,
    redirect,
    serving,
)
from tests.worker.jobs_harness import event_row, fresh_database, make_tenant

DOC = b"The user's passport expires in March 2027."
SECRET = b"metadata: iam credentials"


@pytest.fixture
def internal() -> Iterator[HostileServer]:
    """The internal host (127.0.0.1): a document, and redirects to elsewhere."""
    with serving({"/doc": answer(200, DOC), "/hook": answer(200, b"{}")}) as server:
        yield server


@pytest.fixture
def metadata(internal: HostileServer) -> Iterator[HostileServer]:
    """A second host on the same port (127.0.0.2): what a rebinding name or a redirect must never reach."""
    with serving(answer(200, SECRET), host="127.0.0.2", port=internal.port) as server:
        yield server


# ----------------------------------------------------------------------------------------------
# literal addresses: refused for documents and at webhook creation, whatever their spelling
# ----------------------------------------------------------------------------------------------
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.0.0.1.",
    "0.0.0.0",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
]

INTERNAL_LITERALS = [
    "10.0.0.7",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[fc00::1]",
    "[fd00:ec2::254]",
    "[ff02::1]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[64:ff9b::a00:7]",  # NAT64 of 10.0.0.7
    "[64:ff9b:1::a00:7]",  # local-use NAT64
    "[::ffff:a9fe:a9fe]",  # IPv4-mapped 169.254.169.254
    "[::ffff:10.0.0.7]",
    "[::a9fe:a9fe]",  # IPv4-compatible
    "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "[2001:db8::1]",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_in_any_spelling_is_never_fetched(internal: HostileServer, host: str) -> None:
    url = f"http://{host}:{internal.port}/doc"
    refused = "refused|with a host"  # httpx cannot even parse some spellings (0177.0.0.1): refused as malformed
    with pytest.raises(DocumentError, match=refused) as err:
        await DocumentReader().read("txt_url", url)
    assert "127." not in str(err.value)
    with pytest.raises(BadRequest, match=refused) as bad:
        webhooks.check_url(url, WebhookSettings())
    assert "127." not in str(bad.value)
    assert internal.requests == []


@pytest.mark.parametrize("host", INTERNAL_LITERALS)
async def test_internal_address_classes_are_refused_without_naming_the_address(host: str) -> None:
    url = f"http://{host}/latest/meta-data/"
    bare = host.strip("[]").split("%")[0]
    with pytest.raises(DocumentError, match="refused") as err:
        await DocumentReader(timeout_s=2).read("txt_url", url)
    assert bare not in str(err.value)
    with pytest.raises(BadRequest, match="refused") as bad:
        webhooks.check_url(url, WebhookSettings())
    assert bare not in str(bad.value)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/_x", "http:///x", "http://a b/"]
)
async def test_other_schemes_and_malformed_urls_are_refused(url: str) -> None:
    guard = OutboundGuard(OutboundPolicy(), MapResolver({}))
    with pytest.raises(OutboundError):
        await guard.fetch(url, max_body=1000)
    with pytest.raises(BadRequest, match="url"):
        webhooks.check_url(url, WebhookSettings())
    with pytest.raises(DocumentError) as err:
        await DocumentReader().read("txt_url", url)
    assert "root:" not in str(err.value)


def test_webhook_creation_checks_syntax_and_literals_only() -> None:
    """A host that cannot be resolved now is accepted (the TS SDK's tests register example.com); public
    literals are accepted; the private switch and the allowed networks open what they say."""
    for url in (
        "https://example.com/hook",
        "https://no-such-host.invalid/hook",
        "http://93.184.216.34:8080/x",
        "https://[2606:4700:4700::1111]/x",
    ):
        webhooks.check_url(url, WebhookSettings())
    webhooks.check_url("http://10.0.0.7/x", WebhookSettings(allow_private_urls=True))
    webhooks.check_url("http://10.0.0.7/x", WebhookSettings(allowed_networks=["10.0.0.0/24"]))
    with pytest.raises(BadRequest, match="refused"):
        webhooks.check_url("http://10.0.1.7/x", WebhookSettings(allowed_networks=["10.0.0.0/24"]))


# ----------------------------------------------------------------------------------------------
# names: resolved once through the port, every answer checked, the checked address connected to
# ----------------------------------------------------------------------------------------------
async def test_a_name_resolving_to_a_private_address_is_refused(internal: HostileServer) -> None:
    resolver = MapResolver(
        {
            "docs.test": ["127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "mixed.test": ["93.184.216.34", "10.0.0.7"],
            "mapped.test": ["::ffff:127.0.0.1"],
            "nat64.test": ["64:ff9b::a9fe:a9fe"],
        }
    )
    for name in resolver.answers:
        with pytest.raises(DocumentError, match="refused") as err:
            await DocumentReader(resolver=resolver).read("txt_url", f"http://{name}:{internal.port}/doc")
        assert not any(a in str(err.value) for a in ("127.", "169.254", "10.0", "::ffff", "64:ff9b"))
    assert internal.requests == []
    # the operator switch still opens private addresses, and the name is connected through the port's answer
    text, _ = await DocumentReader(allow_private=True, resolver=resolver).read(
        "txt_url", f"http://docs.test:{internal.port}/doc"
    )
    assert text == DOC.decode()
    assert internal.requests[0].headers["host"] == f"docs.test:{internal.port}"


async def test_a_rebinding_name_is_connected_at_the_address_that_was_checked(
    internal: HostileServer, metadata: HostileServer
) -> None:
    """First answer 127.0.0.1 (allowed here), every later one 127.0.0.2 (refused). A guard that resolves
    again to connect (httpx's own lookup) would read the second host: the pinned one reads the first."""
    resolver = RebindingResolver(first=["127.0.0.1"], then=["127.0.0.2"])
    reader = DocumentReader(allowed_networks=("127.0.0.1/32",), resolver=resolver)
    text, _ = await reader.read("txt_url", f"http://rebind.test:{internal.port}/doc")
    assert text == DOC.decode()
    assert resolver.calls == ["rebind.test"]
    assert metadata.requests == []
    # the other order: the checked answer is refused and nothing is connected to
    resolver = RebindingResolver(first=["127.0.0.2"], then=["127.0.0.1"])
    with pytest.raises(DocumentError, match="refused"):
        await DocumentReader(allowed_networks=("127.0.0.1/32",), resolver=resolver).read(
            "txt_url", f"http://rebind.test:{internal.port}/doc"
        )
    assert len(internal.requests) == 1
    assert metadata.requests == []


async def test_redirects_are_followed_only_to_checked_addresses(
    internal: HostileServer, metadata: HostileServer
) -> None:
    port = internal.port
    assert isinstance(internal.routes, dict)
    internal.routes.update(
        {
            "/to-metadata-ip": redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-second-host": redirect(f"http://127.0.0.2:{port}/secret"),
            "/to-mapped": redirect(f"http://[::ffff:127.0.0.2]:{port}/secret"),
            "/to-name": redirect(f"http://internal.test:{port}/secret"),
            "/to-file": redirect("file:///etc/passwd"),
            "/hop": redirect("/doc", 301),
            "/loop": redirect("/loop"),
        }
    )
    resolver = MapResolver({"internal.test": ["127.0.0.2"]})
    reader = DocumentReader(allowed_networks=("127.0.0.1/32",), resolver=resolver)
    for path in ("/to-metadata-ip", "/to-second-host", "/to-mapped", "/to-name"):
        with pytest.raises(DocumentError, match="refused") as err:
            await reader.read("txt_url", internal.url(path))
        assert "127.0.0.2" not in str(err.value)
        assert "169.254" not in str(err.value)
    with pytest.raises(DocumentError, match="http"):
        await reader.read("txt_url", internal.url("/to-file"))
    with pytest.raises(DocumentError, match="redirect"):
        await reader.read("txt_url", internal.url("/loop"))
    assert metadata.requests == []
    text, _ = await reader.read("txt_url", internal.url("/hop"))  # a checked hop is followed
    assert text == DOC.decode()


# ----------------------------------------------------------------------------------------------
# the request itself: no proxy or .netrc from the environment, no decompression, one deadline
# ----------------------------------------------------------------------------------------------
async def test_the_environment_adds_no_proxy_and_no_credentials(
    internal: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(answer(200, SECRET)) as proxy:
        netrc = tmp_path / "netrc"
        netrc.write_text("machine docs.test login alice password hunter2\n")
        netrc.chmod(0o600)
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        monkeypatch.setenv("ALL_PROXY", proxy.base)
        monkeypatch.setenv("NETRC", str(netrc))
        resolver = MapResolver({"docs.test": ["127.0.0.1"]})
        text, _ = await DocumentReader(allow_private=True, resolver=resolver).read(
            "txt_url", f"http://docs.test:{internal.port}/doc"
        )
        assert text == DOC.decode()
        assert proxy.requests == []
        (seen,) = internal.requests
        assert "authorization" not in seen.headers
        assert seen.headers["accept-encoding"] == "identity"


async def test_a_compressed_answer_is_not_inflated() -> None:
    """Asked for identity, a server sends gzip anyway: refused, never decompressed past the size limit."""
    with (
        serving(flood(200_000, headers={"Content-Encoding": "gzip"})) as server,
        pytest.raises(DocumentError, match="compressed"),
    ):
        await DocumentReader(allow_private=True, max_bytes=1_000_000).read("txt_url", server.url("/x"))


async def test_an_announced_or_streamed_oversize_body_is_cut_off() -> None:
    with serving(flood(50_000_000)) as server:
        t0 = time.monotonic()
        with pytest.raises(DocumentError, match="larger than 100000 bytes"):
            await DocumentReader(allow_private=True, max_bytes=100_000).read("txt_url", server.url("/x"))
        assert time.monotonic() - t0 < 5
        assert server.sent < 10_000_000  # refused on Content-Length, not read to the end


async def test_one_deadline_bounds_a_dripping_server() -> None:
    """One byte every 0.1 s never trips a per-read timeout; the request's single deadline cuts it off."""
    with serving(drip(0.1, declared=1000)) as server:
        reader = DocumentReader(allow_private=True, timeout_s=1.0)
        t0 = time.monotonic()
        with pytest.raises(DocumentError, match="timed out after 1 s"):
            await asyncio.wait_for(reader.read("txt_url", server.url("/slow")), 20)
        assert time.monotonic() - t0 < 3


# ----------------------------------------------------------------------------------------------
# TLS: the pinned connection still verifies the certificate for the host name (SNI)
# ----------------------------------------------------------------------------------------------
def _https_server(ca: trustme.CA, name: str) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(DOC)))
            self.end_headers()
            self.wfile.write(DOC)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(ctx)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


async def test_tls_is_verified_for_the_name_while_connecting_to_the_pinned_address() -> None:
    ca = trustme.CA()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    resolver = MapResolver({"docs.test": ["127.0.0.1"]})
    guard = OutboundGuard(OutboundPolicy(allow_private=True, deadline_s=5), resolver, ssl_context=client_ctx)
    good, port = _https_server(ca, "docs.test")
    try:
        got = await guard.fetch(f"https://docs.test:{port}/doc", max_body=1000)
        assert (got.status, got.body) == (200, DOC)
    finally:
        good.shutdown()
        good.server_close()
    wrong, port = _https_server(ca, "other.test")
    try:
        with pytest.raises(OutboundError, match="TLS"):
            await guard.fetch(f"https://docs.test:{port}/doc", max_body=1000)
    finally:
        wrong.shutdown()
        wrong.server_close()


# ----------------------------------------------------------------------------------------------
# webhook deliveries: resolved, checked and pinned at each attempt
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hooks_db_url(pg: EmbeddedPostgres) -> str:
    return fresh_database(pg, "outbound")  # no server sweeps it: the test runs each delivery itself


@pytest.fixture
async def hooks_db(hooks_db_url: str) -> AsyncIterator[tuple[str, Database]]:
    db = Database(hooks_db_url)
    try:
        yield hooks_db_url, db
    finally:
        await db.dispose()


async def deliver(hooks: tuple[str, Database], url: str, settings: WebhookSettings, resolver: Resolver) -> Any:
    """One delivery of one webhook, run through the real job runner with this resolver; its event row."""
    db_url, db = hooks
    project = uuid.UUID(make_tenant(db_url)[0])
    async with db.transaction() as conn:
        hook = await WebhookRepository(conn).create(
            project, name="h", url=url, event_types=["memory_add"], secret="whsec_x", owner="o@example.com"
        )
        job_id = uuid.uuid4()
        body = {"event_details": {"event": "ADD"}, "event_type": "memory_add"}
        payload = {"webhook_id": str(hook.id), "event_type": "memory_add", "body": body}
        await JobRepository(conn).insert_pending(project, job_id, JobKind.WEBHOOK, payload)
    providers = Providers(embedder=cast(Embedder, None), webhooks=WebhookSender(settings, resolver))
    ctx = jobs.JobContext(
        db=db,
        providers=providers,
        handlers={JobKind.WEBHOOK: webhooks.delivery_handler()},
        policies={JobKind.WEBHOOK: jobs.RetryPolicy(1, 0.01, 0.01)},
    )
    await asyncio.wait_for(jobs.run(ctx, job_id), 30)
    return await event_row(db, job_id)


async def test_a_delivery_to_a_name_resolving_to_a_private_address_is_refused(
    hooks_db: tuple[str, Database], internal: HostileServer
) -> None:
    for answers in (["127.0.0.1"], ["::ffff:127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["64:ff9b::7f00:1"]):
        row = await deliver(
            hooks_db,
            f"http://hooks.test:{internal.port}/hook",
            WebhookSettings(timeout_s=2),
            MapResolver({"hooks.test": answers}),
        )
        assert row.status == "FAILED"
        assert "refused" in row.error
        assert "127." not in row.error
        assert "127." not in str(row.results)
    assert internal.requests == []


async def test_a_rebinding_delivery_goes_to_the_checked_address(
    hooks_db: tuple[str, Database], internal: HostileServer, metadata: HostileServer
) -> None:
    resolver = RebindingResolver(first=["127.0.0.1"], then=["127.0.0.2"])
    row = await deliver(
        hooks_db,
        f"http://hooks.test:{internal.port}/hook",
        WebhookSettings(allowed_networks=["127.0.0.1/32"], timeout_s=2),
        resolver,
    )
    assert row.status == "SUCCEEDED", row.error
    assert [r.path for r in internal.requests] == ["/hook"]
    assert internal.requests[0].headers["host"] == f"hooks.test:{internal.port}"
    assert metadata.requests == []
    assert resolver.calls == ["hooks.test"]


async def test_a_delivery_redirected_to_an_internal_host_is_not_followed(
    hooks_db: tuple[str, Database], internal: HostileServer, metadata: HostileServer
) -> None:
    assert isinstance(internal.routes, dict)
    internal.routes["/hook"] = redirect(f"http://127.0.0.2:{internal.port}/secret", 307)
    row = await deliver(
        hooks_db,
        f"http://hooks.test:{internal.port}/hook",
        WebhookSettings(allowed_networks=["127.0.0.1/32"], timeout_s=2),
        MapResolver({"hooks.test": ["127.0.0.1"]}),
    )
    assert row.status == "FAILED"
    assert "HTTP 307" in row.error
    assert len(internal.requests) == 1
    assert metadata.requests == []


def test_literal_checks_do_not_depend_on_the_address_library_version() -> None:
    """The guard's own classes, not `ipaddress.is_global` (whose answers changed between Python releases)."""
    from memserver.providers.net.addresses import refused_class

    assert refused_class(ipaddress.ip_address("8.8.8.8")) is None
    assert refused_class(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert refused_class(ipaddress.ip_address("::ffff:8.8.8.8")) is None  # mapped public: its v4 is checked
    for bad in ("64:ff9b::808:808", "::ffff:169.254.169.254", "2002:0a00:0001::1", "192.0.0.8", "198.18.0.1"):
        assert refused_class(ipaddress.ip_address(bad)) is not None, bad
