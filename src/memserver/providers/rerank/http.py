"""Any server speaking one of the common `/rerank` APIs, over one kept-alive HTTP client.

* `cohere` (Cohere v1/v2, Jina, vLLM, Infinity, LiteLLM, OpenVINO): `{model?, query, documents, top_n}`,
  answered `{"results": [{index, relevance_score}]}`;
* `voyage`: `{model?, query, documents, top_k}`, answered `{"data": [{index, relevance_score}]}`;
* `tei` (Hugging Face text-embeddings-inference): `{query, texts, raw_scores: false, truncate: true}`, answered
  with a bare list `[{index, score}]` (every text, scored by a sigmoid).

Replies are read leniently whatever the shape asked for (a list under `results` or `data`, or bare; the score as
`relevance_score` or `score`): an item whose index is not one of the documents sent or whose score is not a
finite number is dropped, a repeated index counts once, and only a reply with no usable item is invalid.
Scores outside 0..1 (raw logits from some servers) are mapped through the logistic function, which keeps their
order. The URL is operator configuration (like MEMSERVER_LLM__BASE_URL), not a user's, so it is not subject to
the outbound URL guard; redirects are not followed and no proxy is taken from the environment.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import orjson

from memserver.providers.errors import ProviderInvalidReply, ProviderRejected, ProviderTimeout, ProviderUnavailable
from memserver.providers.rerank.base import RerankScore, Spent

Api = Literal["cohere", "voyage", "tei"]
MAX_QUERY_CHARS = 2_000
MAX_REPLY_BYTES = 1_000_000  # 1,000 scored items take ~60 kB; anything near this is not a rerank reply


class HttpReranker:
    """The reranker port over a `/rerank` endpoint (see the module docstring)."""

    def __init__(
        self,
        *,
        url: str,
        api: Api,
        api_key: str | None,
        model: str | None,
        timeout_s: float,
        max_doc_chars: int,
    ):
        self.name: str = api
        self._url = url
        self._api = api
        self._model = model
        self._timeout_s = timeout_s
        self._max_doc_chars = max_doc_chars
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout_s, trust_env=False, follow_redirects=False)

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int, *, spent: Spent | None = None
    ) -> list[RerankScore]:
        del spent  # a /rerank server spends no LLM calls
        if not documents:
            return []
        body = request_body(
            self._api, query[:MAX_QUERY_CHARS], [d[: self._max_doc_chars] for d in documents], top_n, self._model
        )
        try:
            async with self._client.stream("POST", self._url, json=body) as reply:
                _check_status(reply.status_code)
                raw = await _read_bounded(reply)
        except httpx.TimeoutException:
            raise ProviderTimeout(f"the reranker did not answer within {self._timeout_s:g} s", public=True) from None
        except httpx.HTTPError:
            raise ProviderUnavailable("the reranker could not be reached", public=True) from None
        return parse_reply(raw, len(documents))

    async def aclose(self) -> None:
        await self._client.aclose()


def request_body(api: Api, query: str, documents: list[str], top_n: int, model: str | None) -> dict[str, Any]:
    """The request of one shape (the model only when configured: single-model servers need none)."""
    if api == "tei":
        return {"query": query, "texts": documents, "raw_scores": False, "truncate": True}
    body: dict[str, Any] = {"model": model} if model else {}
    body |= {"query": query, "documents": documents, ("top_k" if api == "voyage" else "top_n"): top_n}
    return body


def _check_status(status: int) -> None:
    if status < 300:
        return
    if status == 429 or status >= 500:
        raise ProviderUnavailable(f"the reranker answered HTTP {status}", public=True)
    if status in (401, 403):
        raise ProviderRejected(
            f"the reranker refused our credentials (HTTP {status}); check MEMSERVER_RERANK__API_KEY", public=True
        )
    raise ProviderRejected(
        f"the reranker refused the request (HTTP {status}); "
        "check MEMSERVER_RERANK__URL, MEMSERVER_RERANK__API and MEMSERVER_RERANK__MODEL",
        public=True,
    )


async def _read_bounded(reply: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise ProviderInvalidReply("the reranker's reply is too large to be a ranking", public=True)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_reply(raw: bytes, count: int) -> list[RerankScore]:
    """The usable scores of a reply about `count` documents, best first (see the module docstring)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # Python servers write NaN and Infinity, which strict JSON (orjson) refuses: those items drop below
            data = json.loads(raw)
        except ValueError:
            data = None
    items = data.get("results", data.get("data")) if isinstance(data, dict) else data
    found: dict[int, float] = {}
    for item in items if isinstance(items, list) else []:
        index, score = _item(item, count)
        if index is not None and score is not None and index not in found:
            found[index] = score
    if not found:
        raise ProviderInvalidReply("the reranker's reply could not be read", public=True)
    if any(not 0.0 <= s <= 1.0 for s in found.values()):
        found = {i: _logistic(s) for i, s in found.items()}
    ranked = sorted(found.items(), key=lambda p: -p[1])  # stable: ties keep the server's order
    return [RerankScore(i, round(s, 6)) for i, s in ranked]


def _item(item: Any, count: int) -> tuple[int | None, float | None]:
    if not isinstance(item, dict):
        return None, None
    index = item.get("index")
    score = item.get("relevance_score", item.get("score"))
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        return None, None
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        return None, None
    return index, float(score)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
