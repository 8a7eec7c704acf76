"""/openapi.json is a contract: clients are generated from it and every operation declares the role it needs
(`x-memserver-role`). This test holds the served document to a recorded copy, so no move of code changes an
operation id, a parameter, a schema, a status code or a role unnoticed.

Parameters are compared as a set per operation (their order follows how a route declares them and means
nothing to a client). After a deliberate change of the API, rewrite the copy and review its diff:
`.venv/bin/python -m tests.api.test_openapi_snapshot`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


def normalised(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with each operation's parameters in one order (by location, then name)."""
    doc = json.loads(json.dumps(doc))
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            if "parameters" in op:
                op["parameters"] = sorted(op["parameters"], key=lambda p: (p["in"], p["name"]))
    return doc


def test_the_served_document_is_the_recorded_one(live_server: str) -> None:
    served = normalised(httpx.get(f"{live_server}/openapi.json", timeout=30).json())
    recorded = json.loads(SNAPSHOT.read_text())
    assert served.keys() == recorded.keys()
    assert sorted(served["paths"]) == sorted(recorded["paths"])
    for path, ops in recorded["paths"].items():
        for method, op in ops.items():
            assert served["paths"][path].get(method) == op, (method, path)
    assert served["components"] == recorded["components"]
    assert served == recorded


def test_every_operation_of_the_record_declares_a_role() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    roles = {op.get("x-memserver-role") for ops in recorded["paths"].values() for op in ops.values()}
    assert roles == {"PUBLIC", "READER", "OWNER", "ORG_OWNER"}


def write_snapshot() -> None:
    from pydantic import SecretStr

    from memserver.config import Settings
    from memserver.main import create_app

    app = create_app(Settings(database_url=SecretStr("postgresql://nobody@127.0.0.1:1/none")))  # never connected
    SNAPSHOT.write_text(json.dumps(normalised(app.openapi()), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_snapshot()
