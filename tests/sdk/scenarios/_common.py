"""Helpers shared by the Python SDK scenarios (stdlib only: runs inside every SDK venv).

A scenario is a sequence of named steps. The first failed check prints
``FAIL [step]: message`` (plus the offending value) to stderr and exits 1; an unexpected
exception prints its traceback and exits 2. Success exits 0 after ``OK``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NoReturn

_current_step = "setup"


class CheckFailed(Exception):
    pass


def env() -> tuple[str, str]:
    url = os.environ.get("MEMSERVER_URL")
    key = os.environ.get("MEMSERVER_KEY")
    if not url or not key:
        print("MEMSERVER_URL and MEMSERVER_KEY must be set", file=sys.stderr)
        raise SystemExit(3)
    return url.rstrip("/"), key


def suffix() -> str:
    """A per-run suffix so entity ids never collide between runs."""
    return uuid.uuid4().hex[:10]


def step(name: str) -> None:
    global _current_step
    _current_step = name
    print(f"--> {name}", flush=True)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, indent=1, sort_keys=True, default=str)
    except Exception:
        text = repr(value)
    return text if len(text) < 4000 else text[:4000] + " ...(truncated)"


def fail(message: str, value: Any = None) -> NoReturn:
    raise CheckFailed(message if value is None else f"{message}\n    got: {_show(value)}")


def check(condition: Any, message: str, value: Any = None) -> None:
    if not condition:
        fail(message, value)


def check_eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        fail(f"{what}: expected {expected!r}, got {actual!r}")


def check_uuid(value: Any, what: str) -> str:
    try:
        uuid.UUID(str(value))
    except (ValueError, TypeError):
        fail(f"{what} is not a UUID: {value!r}")
    return str(value)


def check_timestamp(value: Any, what: str) -> None:
    if not isinstance(value, str):
        fail(f"{what} is not an ISO-8601 string: {value!r}")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{what} is not an ISO-8601 timestamp: {value!r}")


def check_keys(obj: Any, keys: Iterable[str], what: str) -> None:
    check(isinstance(obj, dict), f"{what} should be a JSON object", obj)
    missing = [k for k in keys if k not in obj]
    check(not missing, f"{what} lacks keys {missing}", obj)


def expect_raises(
    exc_types: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[[], Any], what: str
) -> BaseException:
    try:
        result = fn()
    except exc_types as exc:  # the expected failure
        print(f"    ok: {what} raised {type(exc).__name__}: {str(exc)[:160]}", flush=True)
        return exc
    except Exception as exc:
        names = exc_types.__name__ if isinstance(exc_types, type) else [t.__name__ for t in exc_types]
        fail(f"{what}: expected {names}, but got {type(exc).__name__}: {exc}")
    names = exc_types.__name__ if isinstance(exc_types, type) else [t.__name__ for t in exc_types]
    fail(f"{what}: expected {names} to be raised, but the call returned", result)


def wait_for(fn: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.25) -> Any:
    """Poll fn() until it returns a truthy value (for operations the server may finish asynchronously)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f}s waiting for {what}", last)
        time.sleep(interval)


def memory_texts(items: Iterable[dict]) -> list[str]:
    return sorted(item.get("memory") for item in items)


def by_id(items: Iterable[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


def check_scores(results: list[dict], what: str, threshold: float | None = None) -> None:
    previous = None
    for item in results:
        score = item.get("score")
        check(isinstance(score, (int, float)) and 0 < score <= 1, f"{what}: score not in (0, 1]", item)
        if threshold is not None:
            check(score >= threshold, f"{what}: score {score} below the requested threshold {threshold}", item)
        if previous is not None:
            check(score <= previous + 1e-9, f"{what}: results not sorted by descending score", results)
        previous = score


def run(main: Callable[[], None], name: str) -> NoReturn:
    started = time.monotonic()
    try:
        main()
    except CheckFailed as exc:
        print(f"FAIL [{name}] [{_current_step}]: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except SystemExit:
        raise
    except BaseException as exc:
        traceback.print_exc()
        print(
            f"ERROR [{name}] [{_current_step}]: unexpected {type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2) from None
    print(f"OK [{name}] in {time.monotonic() - started:.1f}s", flush=True)
    raise SystemExit(0)


def poll_event(http: Any, event_id: str, timeout: float = 30.0) -> dict:
    """GET /v1/event/{id}/ through the SDK's own authenticated HTTP client until the event is done."""

    def done() -> Any:
        r = http.get(f"/v1/event/{event_id}/")
        check_eq(r.status_code, 200, "GET /v1/event/{id}/ status")
        event = r.json()
        return event if event.get("status") in ("SUCCEEDED", "FAILED") else None

    return dict(wait_for(done, f"event {event_id}", timeout=timeout))


# What the scripted model (echo extractor) makes of INFER_TEXT: the user's statement, as one fact.
INFER_TEXT = "I drink green tea every morning."


def check_inferred_event(event: dict, what: str) -> str:
    """An inferred add's event: SUCCEEDED, one ADD of INFER_TEXT; returns the memory id."""
    check_eq(event.get("status"), "SUCCEEDED", f"{what}: event status")
    results = event.get("results") or []
    check_eq([(r.get("event"), (r.get("data") or {}).get("memory")) for r in results], [("ADD", INFER_TEXT)], what)
    return check_uuid(results[0].get("id"), f"{what}: memory id")


def check_relations(items: Any, expected: set[tuple[str, str, str]], what: str, *, scored: bool = False) -> None:
    """`relations` as v2 get_all/search list them: source, source_type, relationship, target, target_type
    (+ score on search)."""
    check(isinstance(items, list), f"{what}: relations should be a list", items)
    keys = {"source", "source_type", "relationship", "target", "target_type"} | ({"score"} if scored else set())
    for r in items:
        check_eq(set(r), keys, f"{what}: keys of a relation")
        if scored:
            check(0.0 <= r["score"] <= 1.0, f"{what}: score in 0..1", r)
    got = {(r["source"], r["relationship"], r["target"]) for r in items}
    check(expected <= got, f"{what}: expected relations {sorted(expected)}", sorted(got))


def check_wrong_keys(
    client_class: Any,
    auth_error: type[BaseException],
    rejected: dict[str, Callable[[Any], Any]],
    headerless: dict[str, Callable[[Any], Any]] | None = None,
) -> None:
    """A wrong key fails the way every Python generation reports it: a client constructed with one raises
    ValueError ``Error: <detail>`` (its ping answers a JSON 401); then each call of `rejected` (what it does ->
    the call, given a client), made with a key the server rejects, raises `auth_error`, and so does each call of
    `headerless`, made with no Authorization header at all."""
    url, key = env()
    step("construct with a wrong key -> ValueError at construction (ping 401)")
    exc = expect_raises(
        ValueError, lambda: client_class(api_key=f"m0-wrong-{suffix()}", host=url), "MemoryClient(wrong key)"
    )
    check(
        str(exc).startswith("Error: ") and "Client error" not in str(exc),
        "ping 401 body should be JSON with a 'detail' message",
        str(exc),
    )

    step(f"a call whose key is rejected -> {auth_error.__name__}")
    client = client_class(api_key=key, host=url)
    client.client.headers["Authorization"] = f"Token m0-wrong-{suffix()}"
    for what, call in rejected.items():
        expect_raises(auth_error, functools.partial(call, client), what)
    if headerless:
        client.client.headers.pop("Authorization")
        for what, call in headerless.items():
            expect_raises(auth_error, functools.partial(call, client), what)


def v1_infer(client_class: Any) -> None:
    """The v1 clients' infer=true (the default): the add is queued (PENDING event), then processed;
    async_mode=False processes it in the request and answers the memory events."""
    url, key = env()
    user = f"tea-{suffix()}"
    client = client_class(api_key=key, host=url)
    step("add without infer (default true) -> a queued PENDING event")
    resp = client.add([{"role": "user", "content": INFER_TEXT}], user_id=user)
    items = resp["results"] if isinstance(resp, dict) else resp
    check(isinstance(items, list) and len(items) == 1, "one queued item", resp)
    check_eq(items[0].get("status"), "PENDING", "queued status")
    event_id = check_uuid(items[0].get("event_id"), "queued event_id")
    step("poll the event until SUCCEEDED")
    memory_id = check_inferred_event(poll_event(client.client, event_id), "inferred add")
    listed_now = client.get_all(user_id=user)
    listed_now = listed_now["results"] if isinstance(listed_now, dict) else listed_now
    check_eq([m["id"] for m in listed_now], [memory_id], "get_all after the inferred add")
    step("async_mode=False -> the memory events in the response")
    resp = client.add([{"role": "user", "content": "I also bake sourdough bread."}], user_id=user, async_mode=False)
    items = resp["results"] if isinstance(resp, dict) else resp
    check_eq([(i.get("event"), i.get("memory")) for i in items], [("ADD", "I also bake sourdough bread.")], "sync add")
    check_uuid(items[0].get("id"), "sync add id")
    listed_now = client.get_all(user_id=user)
    listed_now = listed_now["results"] if isinstance(listed_now, dict) else listed_now
    check_eq(len(listed_now), 2, "memories after the sync add")


def _seed(http: Any, user: str, n: int) -> list[str]:
    """n verbatim memories of `user`, added through the SDK's own authenticated HTTP client."""
    messages = [{"role": "user", "content": f"{user} fact {i}"} for i in range(n)]
    r = http.post("/v3/memories/add/", json={"messages": messages, "user_id": user, "infer": False})
    check_eq(r.status_code, 200, "seeding memories")
    return [item["id"] for item in r.json()["results"]]


def _alive(http: Any, ids: list[str]) -> list[bool]:
    return [http.get(f"/v1/memories/{mid}/").status_code == 200 for mid in ids]


def delete_all_filters(client: Any, async_client_class: Any) -> None:
    """delete_all(filters={...}), sync and async: the client sends the dict's str() as one query value; exactly
    that user's memories are deleted (the count answered), the others kept. An id holding a quote makes the
    repr switch to double quotes."""
    url, key = env()
    sfx = suffix()
    carol, dave, obrien = f"carol-{sfx}", f"dave-{sfx}", f"o'brien-{sfx}"
    ids = {user: _seed(client.client, user, 2) for user in (carol, dave, obrien)}

    step("delete_all(filters={'user_id': ...}) deletes exactly that user's memories")
    resp = client.delete_all(filters={"user_id": carol})
    check_eq(resp, {"message": "Memories deleted successfully!", "deleted_count": 2}, "delete_all(filters) answer")
    check_eq(_alive(client.client, ids[carol]), [False, False], "carol's memories after delete_all(filters)")
    check_eq(_alive(client.client, ids[dave] + ids[obrien]), [True] * 4, "the other users' memories")

    step("AsyncMemoryClient.delete_all(filters=...) with a quote in the user id")

    async def delete_async() -> Any:
        aclient = async_client_class(api_key=key, host=url)
        try:
            return await aclient.delete_all(filters={"user_id": obrien})
        finally:
            await aclient.async_client.aclose()

    resp = asyncio.run(delete_async())
    check_eq(resp.get("deleted_count"), 2, "async delete_all(filters) deleted_count")
    check_eq(_alive(client.client, ids[obrien] + ids[dave]), [False, False, True, True], "after the async delete")

    step("delete_all(filters={}) deletes nothing (400)")
    expect_raises(Exception, lambda: client.delete_all(filters={}), "delete_all(filters={})")
    check_eq(_alive(client.client, ids[dave]), [True, True], "dave's memories after a refused delete_all")
