"""Pages of a list: the page a request asks for, checked in one place, and the {count, next, previous, results}
envelope with its links. After Polar's `kit/pagination.py`, a route declares its page parameters as a dependency:

* `paging: Annotated[Paging, page_query(default_size=..., max_size=...)]` where the page is the first thing the
  route checks (no body, no other parameter that can fail): the dependency checks it;
* `query: PageQueryDep` where a body may name the page too (the query wins) or the page only counts when both
  `page` and `page_size` are given: the dependency never raises, the route calls `.checked()` where the page is
  checked today, so FastAPI's own errors (body, other parameters) keep coming first.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request

from memserver.errors import BadRequest, NotFound
from memserver.services.runtime import Runtime

MAX_PAGE = 10**9


@dataclass(frozen=True)
class Paging:
    """A checked page: its number (from 1) and size."""

    page: int
    size: int

    @classmethod
    def checked(cls, page: int | None, size: int | None, *, default_size: int = 100, max_size: int = 200) -> Paging:
        p = 1 if page is None else page
        n = default_size if size is None else size
        if p < 1 or p > MAX_PAGE:  # past any real end, and an OFFSET the database could not take
            raise NotFound("Invalid page.")
        if n < 1 or n > max_size:
            raise BadRequest(f"page_size must be between 1 and {max_size}")
        return cls(p, n)

    def envelope(self, request: Request, results: list[Any], total: int) -> dict[str, Any]:
        """DRF-style page: {count, next, previous, results}; a page past the end is a 404."""
        page, size = self.page, self.size
        if page > 1 and (page - 1) * size >= total:
            raise NotFound("Invalid page.")

        def link(n: int) -> str:
            params = dict(request.query_params)
            params["page"] = str(n)
            params["page_size"] = str(size)
            return f"{link_base(request)}{request.url.path}/?{urlencode(params)}"

        return {
            "count": total,
            "next": link(page + 1) if page * size < total else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": results,
        }


def link_base(request: Request) -> str:
    """Scheme and host for absolute links: MEMSERVER_PUBLIC_URL, or the request's own when its Host header is
    allowed (MEMSERVER_ALLOWED_HOSTS); otherwise "" (a relative link), so a forged Host never reaches a client."""
    runtime: Runtime = request.app.state.runtime
    if public_url := runtime.settings.public_url:
        return public_url.rstrip("/")
    allowed = runtime.settings.allowed_hosts
    host = request.url.hostname or ""
    if "*" in allowed or host.strip("[]").lower() in {h.lower() for h in allowed}:
        return str(request.base_url).rstrip("/")
    return ""


def page_query(*, default_size: int, max_size: int, size_name: str = "page_size") -> Any:
    """A dependency declaring `page` (default 1) and the page size (`size_name`, default `default_size`) as
    query parameters, answering the checked `Paging`."""

    async def paging(**query: int) -> Paging:
        return Paging.checked(query["page"], query[size_name], max_size=max_size)

    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = inspect.Signature(
        [
            inspect.Parameter("page", keyword, default=1, annotation=int),
            inspect.Parameter(size_name, keyword, default=default_size, annotation=int),
        ]
    )
    paging.__signature__ = signature  # type: ignore[attr-defined]  # FastAPI reads the parameters from it
    return Depends(paging)


@dataclass(frozen=True)
class PageQuery:
    """`page` and `page_size` as the query string gives them (None: absent)."""

    page: int | None = None
    page_size: int | None = None

    @property
    def complete(self) -> bool:
        return self.page is not None and self.page_size is not None

    def over(self, page: int | None, page_size: int | None) -> PageQuery:
        """These values (the body's) where the query gives none: the query wins."""
        return PageQuery(
            self.page if self.page is not None else page, self.page_size if self.page_size is not None else page_size
        )

    def checked(self) -> Paging:
        return Paging.checked(self.page, self.page_size)


async def _page_query(page: int | None = None, page_size: int | None = None) -> PageQuery:
    return PageQuery(page, page_size)


PageQueryDep = Annotated[PageQuery, Depends(_page_query)]
