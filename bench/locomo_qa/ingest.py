"""Ingest: every planned add that is not applied yet, each namespace in order, `--concurrency` adds in flight.

An add is never sent twice once applied. Each add carries `metadata.qa_add = "<run id>:<add key>"`; before an add
that has no record in `ingest.jsonl` is sent, the project's events are searched for that marker (once, for all of
them), so an add the server applied but the log never recorded (a crash, a lost reply) is logged from its event
instead. A failed attempt is looked up the same way before it is retried. An add that still fails after
`ATTEMPTS` is logged as failed (nothing of it was written) and the namespace goes on, as a user's next message
would; `--resume` tries it again. An add the server refuses (4xx but 429, or 501: no LLM) stops the run: all
adds are alike.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

from bench.locomo_qa.plan import Add
from bench.locomo_qa.service import Memserver, Reply, event_usage
from bench.locomo_qa.store import RunDir

ATTEMPTS = 3  # as Mem0's evaluation (add_memory(..., retries=3))
MAX_THROTTLED = 30  # 429 answers one add waits out before they count as failed attempts


def marker(run_id: str, add: Add) -> str:
    return f"{run_id}:{add.key}"


def applied(store: RunDir) -> dict[str, dict[str, Any]]:
    return {r["add"]: r for r in store.read("ingest") if r["status"] == "applied"}


class Ingest:
    def __init__(self, ms: Memserver, store: RunDir, run_id: str, concurrency: int, log: Callable[[str], None]) -> None:
        self.ms, self.store, self.run_id, self.log = ms, store, run_id, log
        self.slots = asyncio.Semaphore(concurrency)
        self.recent = max(10, 4 * concurrency)
        self.counts: collections.Counter[str] = collections.Counter()
        self.total = 0
        self.t0 = time.perf_counter()

    async def run(self, adds: list[Add]) -> dict[str, int]:
        done = applied(self.store)
        todo = [a for a in adds if a.key not in done]
        self.total = len(todo)
        if not todo:
            return dict(self.counts)
        events = await self.ms.find_events({marker(self.run_id, a) for a in todo})
        pending: dict[str, list[Add]] = {}
        for a in todo:
            event = events.get(marker(self.run_id, a))
            if event is not None and event.get("status") == "SUCCEEDED":
                self._record(a, "applied", recovered=True, **self._from_event(event))
            else:
                pending.setdefault(a.user_id, []).append(a)
        if self.counts["recovered"]:
            self.log(f"{self.counts['recovered']} adds were applied by the server but not logged: taken from events")
        await asyncio.gather(*(self._namespace(adds) for adds in pending.values()))
        return dict(self.counts)

    async def _namespace(self, adds: list[Add]) -> None:
        for a in adds:
            async with self.slots:
                await self._send(a)

    async def _send(self, a: Add) -> None:
        mark = marker(self.run_id, a)
        errors: list[str] = []
        attempt = 0
        self.counts["sent"] += 1
        while attempt < ATTEMPTS:
            attempt += 1
            reply = await self.ms.add(a, mark)
            if reply.status == 200:  # its event is among the newest: at most `concurrency` adds ran beside it
                found = await self.ms.find_events({mark}, page_size=self.recent)
                usage = event_usage(found[mark]) if mark in found else {}
                self._record(a, "applied", seconds=reply.seconds, attempts=attempt, ops=_ops(reply), **usage)
                return
            errors.append(_error(reply))
            if reply.status == 429 and len(errors) <= MAX_THROTTLED:
                attempt -= 1  # the server asked us to slow down: not the add's failure
                await asyncio.sleep(reply.retry_after or 5.0)
                continue
            if reply.status is not None and (400 <= reply.status < 500 or reply.status == 501):
                # Retrying would send the same request, and every add of LoCoMo is alike: the server or its
                # settings refuse them (a bad key; 501: no LLM configured): stop here rather than fail them all.
                self._record(a, "failed", attempts=attempt, errors=errors)
                raise SystemExit(f"the server refused an add ({errors[-1]}): stopped; --resume continues")
            # Applied although the reply never came? (A sync add still running at the server when the client
            # gave up, after ADD_TIMEOUT_S, is not found yet: that one case could be applied twice.)
            found = await self.ms.find_events({mark})
            if mark in found and found[mark].get("status") == "SUCCEEDED":
                self._record(a, "applied", recovered=True, attempts=attempt, **self._from_event(found[mark]))
                return
            await asyncio.sleep(attempt)
        self._record(a, "failed", attempts=attempt, errors=errors[-ATTEMPTS:])

    @staticmethod
    def _from_event(event: dict[str, Any]) -> dict[str, Any]:
        ops = collections.Counter(str(r.get("event")) for r in event.get("results") or [])
        return {"ops": dict(ops), **event_usage(event)}

    def _record(self, a: Add, status: str, **fields: Any) -> None:
        self.store.append("ingest", {"add": a.key, "user_id": a.user_id, "status": status, **fields})
        self.counts[status] += 1
        if fields.get("recovered"):
            self.counts["recovered"] += 1
        n = self.counts["applied"] + self.counts["failed"]
        if n % 25 == 0 or n == self.total:
            rate = n / max(time.perf_counter() - self.t0, 1e-9)
            self.log(f"ingest {n}/{self.total} ({self.counts['failed']} failed), {rate:.2f} adds/s")


def _ops(reply: Reply) -> dict[str, int]:
    body = reply.body
    items = body.get("results", []) if isinstance(body, dict) else body if isinstance(body, list) else []
    return dict(collections.Counter(str(i.get("event")) for i in items if isinstance(i, dict)))


def _error(reply: Reply) -> str:
    return f"{reply.status}: {str(reply.body)[:300]}"
