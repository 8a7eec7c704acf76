"""The memories an inferred add shows the model: each new fact's nearest memories of exactly its scopes, and the
newest that mention a name, in one round trip (an exact scan, never the approximate index)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pgvector import Vector
from sqlalchemy import (
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)

from memserver.domain.changes import SYNTHESIZED
from memserver.domain.scope import ENTITY_FIELDS, Scope
from memserver.storage.db import VECTOR_ARRAY_PARAM
from memserver.storage.repositories.base import Repository
from memserver.storage.repositories.memories import M, not_expired
from memserver.storage.repositories.search import inline


class CandidateRepository(Repository):
    async def nearest_each(
        self, project_id: uuid.UUID, scopes: Sequence[Scope], vectors: NDArray[np.float32], *, k: int
    ) -> list[list[tuple[uuid.UUID, float]]]:
        """For each vector, its k nearest memories of exactly these scopes as (id, cosine similarity), best
        first: one round trip, an exact scan per vector (used at add time, on one entity's memories)."""
        if len(vectors) == 0:
            return []
        shapes, params = _scope_params(project_id, scopes, vectors)
        out: list[list[tuple[uuid.UUID, float]]] = [[] for _ in range(len(vectors))]
        for r in await self.conn.execute(_nearest_statement(shapes, k), params):
            out[int(r.n) - 1].append((r.id, float(r.sim)))
        for hits in out:
            hits.sort(key=lambda h: -h[1])
        return out

    async def add_candidates(
        self,
        project_id: uuid.UUID,
        scopes: Sequence[Scope],
        vectors: NDArray[np.float32],
        names: Sequence[str],
        *,
        k: int,
        k_names: int,
    ) -> tuple[list[list[tuple[uuid.UUID, float]]], list[uuid.UUID], dict[uuid.UUID, Any]]:
        """What an inferred add shows the model, in one round trip: each vector's k nearest memories of exactly
        these scopes (an exact scan, never the approximate index: the caller reasons about what was not
        shown), and up to k_names of the newest memories that mention one of `names` (a name's memories can
        sit far from the messages in vector space).

        Returns the nearest (id, cosine similarity) per vector, the name matches' ids, and every row found
        (id, memory, created_at, immutable, provenance and the entity ids).
        """
        shapes, params = _scope_params(project_id, scopes, vectors)
        params.update({f"name_{i}": n for i, n in enumerate(names)})
        nearest: list[list[tuple[uuid.UUID, float]]] = [[] for _ in range(len(vectors))]
        named: list[uuid.UUID] = []
        rows: dict[uuid.UUID, Any] = {}
        for r in await self.conn.execute(_candidates_statement(shapes, len(names), k, k_names), params):
            rows[r.id] = r
            if r.n == 0:
                named.append(r.id)
            else:
                nearest[int(r.n) - 1].append((r.id, float(r.sim)))
        for each in nearest:
            each.sort(key=lambda h: -h[1])
        return nearest, named, rows


_CANDIDATE_COLUMNS = (
    M.c.id,
    M.c.memory,
    M.c.created_at,
    M.c.immutable,
    M.c.provenance,
    *(M.c[c] for c in ENTITY_FIELDS),
)


Shapes = tuple[tuple[bool, ...], ...]  # per scope, which entity ids it sets (ENTITY_FIELDS order)


def _scope_params(
    project_id: uuid.UUID, scopes: Sequence[Scope], vectors: NDArray[np.float32]
) -> tuple[Shapes, dict[str, Any]]:
    """The shapes of these scopes (what a statement is built and cached for) and the values it is run with."""
    shapes = tuple(tuple(getattr(s, c) is not None for c in ENTITY_FIELDS) for s in scopes)
    params: dict[str, Any] = {
        "project_id": project_id,
        "qvecs": [Vector(v) for v in vectors],
        **{f"s{i}_{c}": getattr(s, c) for i, s in enumerate(scopes) for c in ENTITY_FIELDS},
    }
    return shapes, params


def _in_scopes(shapes: Shapes) -> list[Any]:
    """The project's unexpired memories of exactly these scopes (an entity id a scope leaves unset is unset), Dream
    patterns left out."""
    scope = or_(
        *(
            and_(
                *(
                    M.c[c] == bindparam(f"s{i}_{c}", type_=Text) if is_set else M.c[c].is_(None)
                    for c, is_set in zip(ENTITY_FIELDS, shape, strict=True)
                )
            )
            for i, shape in enumerate(shapes)
        )
    )
    # Dream's pattern memories are never shown to an add: inference must not edit what synthesis owns.
    return [M.c.project_id == bindparam("project_id"), scope, not_expired(), M.c.source != SYNTHESIZED]


def _nearest(shapes: Shapes, k: int) -> Any:
    """(n, id, sim): each query vector's (`qvecs`, numbered from 1) k nearest memories, by an exact scan."""
    queries = (
        func.unnest(cast(bindparam("qvecs"), VECTOR_ARRAY_PARAM))
        .table_valued("v", with_ordinality="n")
        .render_derived(name="q")
    )
    distance = M.c.embedding.cosine_distance(queries.c.v)
    near = (
        select(M.c.id, distance.label("distance"))
        .where(*_in_scopes(shapes))
        .order_by(distance + 0)  # + 0: an exact scan of the scope, never the approximate index
        .limit(inline(k))
        .lateral("near")
    )
    return select(queries.c.n, near.c.id, (1 - near.c.distance).label("sim")).select_from(queries.join(near, true()))


# Built once per shape, every value a named parameter: building them per add cost ~1 ms of SQLAlchemy
# (measured, of a ~10 ms add).
@functools.lru_cache(maxsize=128)
def _nearest_statement(shapes: Shapes, k: int) -> Any:
    return _nearest(shapes, k)


@functools.lru_cache(maxsize=128)
def _candidates_statement(shapes: Shapes, names: int, k: int, k_names: int) -> Any:
    """`add_candidates`: the nearest, and the newest memories that mention one of the names."""
    parts: list[Any] = [_nearest(shapes, k)]
    if names:
        mentioned = or_(
            *(
                M.c.tsv.op("@@")(func.plainto_tsquery("english", bindparam(f"name_{i}", type_=Text)))
                for i in range(names)
            )
        )
        parts.append(
            select(literal_column("0", Integer).label("n"), M.c.id, literal_column("0.0", Float).label("sim"))
            .where(*_in_scopes(shapes), mentioned)
            .order_by(M.c.created_at.desc())
            .limit(inline(k_names))
        )
    both: Any = union_all(*parts) if len(parts) > 1 else parts[0]
    hits = both.subquery("hits")
    return select(hits.c.n, hits.c.sim, *_CANDIDATE_COLUMNS).select_from(hits.join(M, M.c.id == hits.c.id))
