"""/openapi.json documents the Mem0 response shapes: each route names its response schema, none is untyped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

# The main routes and the schemas their success response must name (all of them, in any order).
EXPECTED = {
    ("get", "/v1/ping"): {"Ping"},
    ("post", "/v3/memories/add"): {"AddResponse"},
    ("post", "/v1/memories"): {"AddQueued", "MemoryEvent", "AddResponseV11"},
    ("post", "/v3/memories"): {"MemoryPage", "AddResponse"},
    ("post", "/v2/memories"): {"Memory", "MemoryPage", "MemoriesWithRelations", "MemoryPageWithRelations"},
    ("get", "/v1/memories"): {"Memory", "MemoryPage"},
    ("post", "/v3/memories/search"): {"SearchResults"},
    ("post", "/v2/memories/search"): {"SearchHit", "SearchResultsV11"},
    ("post", "/v1/memories/search"): {"SearchHit", "SearchResultsV11"},
    ("get", "/v1/memories/{memory_id}"): {"Memory"},
    ("put", "/v1/memories/{memory_id}"): {"Memory"},
    ("delete", "/v1/memories/{memory_id}"): {"MemoryDeleted"},
    ("delete", "/v1/memories"): {"MemoriesDeleted"},
    ("get", "/v1/memories/{first}/{second}"): {"HistoryEntry", "EntityMemoryPage"},
    ("get", "/v1/memories/events"): {"HistoryPage"},
    ("put", "/v1/batch"): {"Message"},
    ("delete", "/v1/batch"): {"Message"},
    ("get", "/v1/entities"): {"EntityPage"},
    ("get", "/v2/entities/{entity_type}/{entity_id}"): {"Entity"},
    ("delete", "/v2/entities/{entity_type}/{entity_id}"): {"EntityDeleted"},
    ("post", "/v1/users"): {"CreatedUser"},
    ("get", "/v1/events"): {"EventPage"},
    ("get", "/v1/event/{event_id}"): {"Event"},
    ("get", "/health"): {"Health"},
}


def named(schema: dict[str, Any]) -> set[str] | None:
    """The component names a response schema is made of, or None if any part of it is not a named model
    (an untyped object such as `dict[str, Any]`, `Any`, or an inline shape)."""
    if "$ref" in schema:
        return {schema["$ref"].rsplit("/", 1)[-1]}
    if "anyOf" in schema:
        names: set[str] = set()
        for part in schema["anyOf"]:
            found = named(part)
            if found is None:
                return None
            names |= found
        return names
    if schema.get("type") == "array" and "items" in schema:
        return named(schema["items"])
    return None


def success_schemas(spec: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                content = response.get("content", {})
                if not status.startswith("2") or (content and "application/json" not in content):
                    continue  # an error, or a documented non-JSON body (the JSONL export)
                out[(method, path, status)] = content.get("application/json", {}).get("schema", {})
    return out


@pytest.fixture(scope="module")
def spec(live_server: str) -> dict[str, Any]:
    r = httpx.get(f"{live_server}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_every_route_names_its_response_schema(spec: dict[str, Any]) -> None:
    schemas = success_schemas(spec)
    assert len(schemas) >= len(EXPECTED)
    untyped = {key: schema for key, schema in schemas.items() if named(schema) is None}
    assert not untyped, f"routes without a named response model: {untyped}"


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_main_routes_name_the_mem0_shapes(spec: dict[str, Any], method: str, path: str) -> None:
    responses = spec["paths"][path][method]["responses"]
    success = [s for s in responses if s.startswith("2")]
    assert len(success) == 1, responses
    schema = responses[success[0]]["content"]["application/json"]["schema"]
    assert named(schema) == EXPECTED[(method, path)], schema


def test_the_memory_shapes_are_documented_field_by_field(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    memory = components["Memory"]["properties"]
    for key in (
        "id",
        "memory",
        "user_id",
        "run_id",
        "session_id",
        "metadata",
        "categories",
        "created_at",
        "updated_at",
    ):
        assert key in memory, key
    assert memory["created_at"]["format"] == "date-time"
    hit = components["SearchHit"]["properties"]
    assert {"score", "score_breakdown"} <= hit.keys()
    assert set(components["MemoryPage"]["properties"]) == {"count", "next", "previous", "results"}
    assert components["MemoryPage"]["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Memory"}
    assert set(components["AddResponse"]["properties"]) == {"message", "status", "event_id", "results"}
    assert components["AddResponse"]["properties"]["status"]["enum"] == ["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]
    assert {"id", "memory_id", "input", "old_memory", "new_memory", "event"} <= components["HistoryEntry"][
        "properties"
    ].keys()


def test_health_documents_its_503(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/health"]["get"]["responses"]
    assert named(responses["503"]["content"]["application/json"]["schema"]) == {"Health"}
