"""`rerank: true`: the configured reranker orders a search's best hits, within a deadline and the breaker.

* `http`: a `/rerank` server orders the best max(top_k, TOP_N) hits; the hits say `cohere`, `voyage` or `tei`,
  and their `score_breakdown` gains `rerank` (the relevance, 0..1);
* `llm`: the configured LLM ranks the best LLM_TOP_N hits in one call (listwise); `llm`, and `rerank` derived
  from the rank;
* `none` (the default): diversification, hits that restate a better hit move down; `diversity`, and
  `diversity` in the breakdown (how much the hit was demoted).

A failure (timeout, refusal, unreadable reply, the breaker open) never fails the search: the hits keep their
hybrid order (not diversified: the caller asked for relevance), each hit carries `reranker: "none"` and the
reason, a WARNING line is logged with the request id, and `memserver_rerank_fallbacks_total{reason}` counts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from memserver import metrics
from memserver.config import RerankSettings
from memserver.pipeline import rerank as ordering
from memserver.pipeline.prompts import rerank as prompt
from memserver.providers.errors import ProviderError, ProviderInvalidReply, public_message
from memserver.providers.llm.base import LLM, Usage
from memserver.providers.registry import Providers
from memserver.providers.rerank.base import Reranker, RerankScore, Spent
from memserver.services import usage

log = logging.getLogger(__name__)

DIVERSITY_POOL = 50  # hits gathered for diversification (what `rerank: true` always did)
OFFLOAD_HITS = 50  # diversifying more hits than this runs on a worker thread (O(window^2) set operations)


@dataclass(frozen=True)
class RerankConfig:
    provider: str = "none"  # none | http | llm
    top_n: int = 30
    timeout_s: float = 2.0
    llm_top_n: int = 20
    llm_timeout_s: float = 8.0

    @classmethod
    def of(cls, s: RerankSettings) -> RerankConfig:
        return cls(s.provider, s.top_n, s.timeout_s, s.llm_top_n, s.llm_timeout_s)


@dataclass
class Outcome:
    """The new order of the hits, the label every hit carries, the breakdown key for the order's values
    (`rerank` or `diversity`; None on a fallback) and, on a fallback, the reason."""

    ordering: ordering.Ordering
    label: str
    key: str | None
    error: str | None = None


def pool(config: RerankConfig, top_k: int) -> int:
    """How many hits a `rerank: true` search gathers before reordering them."""
    return max(top_k, DIVERSITY_POOL if config.provider == "none" else config.top_n)


async def order(
    providers: Providers,
    config: RerankConfig,
    query: str,
    scores: Sequence[float],
    texts: Sequence[str],
    top_k: int,
    *,
    spent: Spent | None = None,
) -> Outcome:
    """The order of hits given in hybrid order (their scores and texts), per the module docstring; `spent` is
    told what a listwise LLM ranking cost."""
    if config.provider == "none":
        if len(texts) > OFFLOAD_HITS:
            diversified = await asyncio.to_thread(ordering.diversify, scores, texts, top_k)
        else:
            diversified = ordering.diversify(scores, texts, top_k)
        return Outcome(diversified, "diversity", "diversity")
    reranker, shown, deadline = _strategy(providers, config, len(texts), top_k)
    if shown == 0:  # nothing to order: no call, and nothing for the breaker to count
        return Outcome(ordering.Ordering([]), "none" if reranker is None else reranker.name, "rerank")
    if reranker is None:
        return _fallback(len(texts), "no reranker is configured", "not_configured")
    breaker = providers.rerank_breaker
    if not breaker.allow():
        why = f"the reranker is paused for {breaker.cooldown_s:g} s after {breaker.failures} consecutive failures"
        return _fallback(len(texts), why, "breaker_open")
    try:
        found = await asyncio.wait_for(reranker.rerank(query, texts[:shown], min(top_k, shown), spent=spent), deadline)
    except TimeoutError:
        breaker.failed()
        return _fallback(len(texts), f"the {_who(reranker)} did not answer within {deadline:g} s", "provider_timeout")
    except ProviderError as exc:
        breaker.failed()
        return _fallback(len(texts), str(exc) if exc.public else public_message(exc), exc.code)
    except Exception:  # a defect, not an outage: still never a failed search, and the log has the traceback
        breaker.failed()
        log.exception("the reranker failed unexpectedly")
        return _fallback(len(texts), "the reranker failed; the server log has the details", "unexpected")
    except BaseException:
        breaker.abandoned()  # cancelled (the client went away): neither a success nor a failure
        raise
    breaker.succeeded()
    return Outcome(ordering.from_scores([(s.index, s.score) for s in found], len(texts)), reranker.name, "rerank")


def _strategy(providers: Providers, config: RerankConfig, hits: int, top_k: int) -> tuple[Reranker | None, int, float]:
    """The reranker, how many of the best hits it is shown, and its deadline."""
    if config.provider == "llm":
        llm = None if providers.llm is None else ListwiseLLM(providers.llm)
        return llm, min(hits, config.llm_top_n), config.llm_timeout_s
    return providers.reranker, min(hits, max(top_k, config.top_n)), config.timeout_s


def _who(reranker: Reranker) -> str:
    return "LLM reranker" if reranker.name == "llm" else "reranker"


def _fallback(total: int, reason: str, code: str) -> Outcome:
    metrics.RERANK_FALLBACKS.labels(code).inc()
    log.warning("rerank fell back to the hybrid order: %s", reason)
    return Outcome(ordering.Ordering(list(range(total))), "none", None, reason)


class ListwiseLLM:
    """The configured LLM as a reranker: one call ranks the hits shown (`pipeline/prompts/rerank.py`); the hits it
    leaves out score 0 and follow in hybrid order. A reply with nothing readable, after the adapter's one
    repair round, or an empty ranking, is a failure."""

    name = "llm"

    def __init__(self, llm: LLM):
        self._llm = llm

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int, *, spent: Spent | None = None
    ) -> list[RerankScore]:
        n = len(documents)
        if n == 1:  # one hit is its own ranking: no call
            return [RerankScore(0, 1.0)]
        call = self._llm.generate(
            prompt.build(query, documents), prompt.Reply, context=prompt.context(n), budget=prompt.budget(n)
        )
        try:
            gen = await usage.spend(spent or _ignore, call)  # the project's usage counts the call, failed or not
        except ProviderInvalidReply:
            raise ProviderInvalidReply("the LLM reranker's reply could not be read", public=True) from None
        if gen.notes:
            log.info("the LLM ranking was read with notes: %s", "; ".join(gen.notes))
        if not gen.value.ranking:
            raise ProviderInvalidReply("the LLM reranker ranked no memory", public=True)
        ranked = ordering.from_ranking(gen.value.ranking, shown=n, total=n)
        return [RerankScore(i, ranked.values[i]) for i in ranked.order]

    async def aclose(self) -> None:
        """The LLM belongs to the process's providers, which close it."""


def _ignore(spent: Usage) -> None:
    """No project to count a ranking's LLM use for."""
