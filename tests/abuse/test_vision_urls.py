"""Image URLs follow the outbound URL policy: a vision model never receives a client's URL to fetch itself
(a self-hosted vision server would fetch it from inside the operator's network: blind SSRF by proxy).
memserver fetches the image through the outbound guard (checked, resolved once, pinned, one deadline,
at most MAX_IMAGE_BYTES) and sends it to the model inline, as a `data:` URL.

A real `memserver serve` with the scripted model and MEMSERVER_LLM__VISION=true; 127.0.0.1 plays a public
image host (allowed through MEMSERVER_DOCUMENTS__ALLOWED_NETWORKS), 127.0.0.2 an internal one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.server import LiveServer, served
from memserver.providers.documents.reader import DocumentError, DocumentReader
from tests.abuse.hostile_http import HostileServer, MapResolver, answer, serving
from tests.api.scripted_llm import client, fact, facts, fake, llm, llm_env
from tests.fakes.openai_server import FakeOpenAI

__all__ = ["client", "fake", "llm"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
SETTINGS = {
    "MEMSERVER_LLM__VISION": "true",
    "MEMSERVER_DOCUMENTS__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
}


@pytest.fixture(scope="module")
def llm_server(database_url: str, fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    log = tmp_path_factory.mktemp("vision-server") / "memserver.log"
    with served(database_url, log, **llm_env(fake, MEMSERVER_LLM__TIMEOUT_S="5", **SETTINGS)) as server:
        yield server


@pytest.fixture
def images() -> Iterator[HostileServer]:
    """The public image host: a PNG served as octet-stream (sniffed, not trusted by header), and a page."""
    routes = {
        "/photo.png": answer(200, PNG, {"Content-Type": "application/octet-stream"}),
        "/page": answer(200, b"<html>not an image</html>", {"Content-Type": "text/html"}),
        "/big.png": answer(200, PNG + b"\x00" * 2_000_001, {"Content-Type": "image/png"}),
    }
    with serving(routes) as server:
        yield server


@pytest.fixture
def internal() -> Iterator[HostileServer]:
    with serving(answer(200, PNG, {"Content-Type": "image/png"}), host="127.0.0.2") as server:
        yield server


def add_image(client: httpx.Client, url: str) -> httpx.Response:
    content = [{"type": "text", "text": "Here is a photo."}, {"type": "image_url", "image_url": {"url": url}}]
    body = {"messages": [{"role": "user", "content": content}], "user_id": "alice", "async_mode": False}
    return client.post("/v1/memories/", json=body)


def sent_images(llm: FakeOpenAI) -> list[Any]:
    return [
        part
        for request in llm.chat_requests()
        for message in request["body"]["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def test_an_image_url_is_fetched_under_the_policy_and_sent_inline(
    client: httpx.Client, llm: FakeOpenAI, images: HostileServer
) -> None:
    llm.chat_script = lambda body: facts(fact("Sent a photo"))
    url = images.url("/photo.png")
    r = add_image(client, url)
    assert r.status_code == 200, r.text
    inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert sent_images(llm) == [{"type": "image_url", "image_url": {"url": inline}}]
    assert url not in json.dumps(llm.chat_requests())  # the model never sees the client's URL
    assert len(images.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "INTERNAL",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://localhost:9/photo.png",
        "http://[::ffff:127.0.0.2]/photo.png",
        "file:///etc/passwd",
        "ftp://127.0.0.1/photo.png",
        "gopher://127.0.0.1:6379/_INFO",
    ],
)
def test_an_image_url_outside_the_policy_never_reaches_the_model(
    client: httpx.Client, llm: FakeOpenAI, internal: HostileServer, url: str
) -> None:
    llm.chat_script = lambda body: facts(fact("never extracted"))
    url = internal.url("/photo.png") if url == "INTERNAL" else url
    r = add_image(client, url)
    assert r.status_code == 400, r.text
    assert "image" in r.json()["detail"]
    assert "127.0.0.2" not in r.text  # the error never names an address
    assert "169.254" not in r.text
    assert llm.chat_requests() == []
    assert internal.requests == []


def test_an_image_url_must_answer_a_small_image(client: httpx.Client, llm: FakeOpenAI, images: HostileServer) -> None:
    llm.chat_script = lambda body: facts(fact("never extracted"))
    r = add_image(client, images.url("/page"))
    assert r.status_code == 400, r.text
    assert "did not answer with an image" in r.json()["detail"]
    r = add_image(client, images.url("/big.png"))
    assert r.status_code == 400, r.text
    assert "2000000" in r.json()["detail"]
    assert llm.chat_requests() == []


async def test_an_image_host_resolving_to_an_internal_address_is_refused(internal: HostileServer) -> None:
    resolver = MapResolver({"images.example": ["127.0.0.2"]})
    reader = DocumentReader(resolver=resolver)
    with pytest.raises(DocumentError, match="resolves to a private, loopback or link-local") as err:
        await reader.image(f"http://images.example:{internal.port}/photo.png")
    assert "127.0.0.2" not in str(err.value)
    assert resolver.calls == ["images.example"]
    assert internal.requests == []
