"""Time-aware ranking: a memory's event dates against the times a query names (pipeline.temporal), and the
guarantee that memories without event dates, and queries without times, score exactly as before."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from memserver.pipeline import temporal
from memserver.pipeline.query import hints
from memserver.pipeline.ranking import HYBRID, Evidence, Scored, rank
from memserver.pipeline.temporal import RECORDED_SHARE, TemporalQuery, event_fit, explain
from tests.unit import test_ranking as golden

REF = datetime(2025, 3, 21, 12, tzinfo=UTC)  # Friday
NAN = float("nan")


def ts(y: int, m: int, d: int) -> float:
    return datetime(y, m, d, tzinfo=UTC).timestamp()


def evidence(*memories: dict[str, float]) -> Evidence:
    """Memories in separate scopes (no neighbours), all recorded at REF unless given."""
    cols: list[list[float]] = [[] for _ in range(9)]
    for i, m in enumerate(memories):
        row = [i, i, m.get("created", REF.timestamp()), m.get("cos", 0.5), 5.0, 0, 0.0, m.get("es", NAN)]
        row.append(m.get("ee", NAN))
        for c, v in zip(cols, row, strict=True):
            c.append(v)
    return Evidence.from_columns(cols, 2)


def ranked(ev: Evidence, query: str, ref: datetime = REF) -> list[Scored]:
    h = hints(query, ref)
    return rank(
        ev,
        periods=[(a.timestamp(), b.timestamp()) for a, b in h.periods],
        months=h.months,
        events=TemporalQuery.of(h.ranges, ref),
        limit=len(ev.seq),
    )


# The three dinners with one friend, all told today: near-identical texts (cosines within 0.02), the one
# that best matches the words last. Only their event dates tell them apart.
DINNERS = evidence(
    {"cos": 0.50, "es": ts(2025, 3, 10), "ee": ts(2025, 3, 17)},  # 0 Tokyo: last week
    {"cos": 0.51, "es": ts(2025, 3, 20), "ee": ts(2025, 3, 21)},  # 1 Paris: yesterday
    {"cos": 0.52, "es": ts(2024, 1, 1), "ee": ts(2025, 1, 1)},  # 2 Lisbon: last year
)


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("Which city did I have dinner with Maya in last week?", 0),
        ("Where did I have dinner with Maya yesterday?", 1),
        ("Where did I have dinner with Maya last year?", 2),
        ("Where did I have dinner with Maya in 2024?", 2),
        ("Where was the dinner with Maya two weeks ago?", 0),  # the ISO week of 03-07: 03-10 is a near miss
        ("dinner with Maya between March 9 2025 and March 16 2025", 0),
        ("Where did I have dinner with Maya?", 2),  # no time: the semantic order
    ],
)
def test_the_three_dinners_rank_by_the_time_asked_about(query: str, first: int) -> None:
    assert ranked(DINNERS, query)[0].index == first


def test_the_weeks_dinner_gets_the_whole_time_weight_and_the_others_the_recorded_share() -> None:
    s = {x.index: x.temporal for x in ranked(DINNERS, "dinner last week")}
    assert s[0] == pytest.approx(HYBRID.time)
    # recorded today, within "last week" + 7 d; with event dates that counts RECORDED_SHARE
    assert s[1] == pytest.approx(HYBRID.time * RECORDED_SHARE)
    assert s[2] == pytest.approx(HYBRID.time * RECORDED_SHARE)


def test_the_report_week_counts_less_only_for_memories_with_event_dates() -> None:
    """Recorded today, three days after last week: that week of reporting lag counts fully for a memory that
    says nothing of its time, RECORDED_SHARE for one whose event dates say what it is about."""
    ev = evidence({"cos": 0.5}, {"cos": 0.5, "es": ts(2020, 1, 1), "ee": ts(2020, 1, 2)})
    s = {x.index: x.temporal for x in ranked(ev, "what happened last week")}
    assert s[0] == HYBRID.time
    assert s[1] == pytest.approx(HYBRID.time * RECORDED_SHARE)


def test_recorded_within_the_time_asked_about_counts_fully() -> None:
    """Asked "what did she show me on October 13?": the turn that says it, on the 13th, is about the 12th ("I painted
    it yesterday"); the telling happened on the day asked about, as it did for the turns around it."""
    on_the_day = datetime(2023, 10, 13, 15, tzinfo=UTC).timestamp()
    ev = evidence(
        {"cos": 0.5, "created": on_the_day, "es": ts(2023, 10, 12), "ee": ts(2023, 10, 13)},
        {"cos": 0.5, "created": on_the_day},
    )
    s = {x.index: x.temporal for x in ranked(ev, "What painting did Melanie show on October 13, 2023?")}
    assert s[0] == s[1] == HYBRID.time


def test_recorded_within_a_time_around_now_counts_less_when_the_event_dates_are_elsewhere() -> None:
    """Asked "what did I do this month?", skiing in January told this month is no answer; a memory without event
    dates told this month still counts fully. Asked about a past month, being told then counts fully (the telling
    is what happened then), as it does without a reference "now"."""
    told = datetime(2025, 3, 5, 10, tzinfo=UTC).timestamp()
    ev = evidence(
        {"cos": 0.52, "created": told, "es": ts(2025, 1, 15), "ee": ts(2025, 1, 16)},
        {"cos": 0.50, "created": told, "es": ts(2025, 3, 4), "ee": ts(2025, 3, 5)},
        {"cos": 0.50, "created": told},
    )
    for query in ("What did I do this month?", "What did I do recently?", "What do I do currently?", "in March?"):
        s = {x.index: x.temporal for x in ranked(ev, query)}
        assert s[0] == pytest.approx(HYBRID.time * RECORDED_SHARE), query
        assert s[1] == s[2] == HYBRID.time, query
    assert ranked(ev, "What did I do this month?")[-1].index == 0
    reason = explain(
        hints("this month", REF).ranges,
        hints("this month", REF).periods,
        datetime.fromtimestamp(told, UTC),
        (datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 1, 16, tzinfo=UTC)),
        UTC,
        REF,
    )
    assert reason.endswith("counts 0.25 (its event dates are elsewhere)"), reason
    past = {x.index: x.temporal for x in ranked(ev, "What did I do in March 2025?", datetime(2025, 6, 1, tzinfo=UTC))}
    assert past[0] == past[1] == past[2] == HYBRID.time


@pytest.mark.parametrize(
    ("event", "query", "expected"),
    [
        ((ts(2025, 3, 12), ts(2025, 3, 13)), (ts(2025, 3, 10), ts(2025, 3, 17)), 1.0),  # inside
        ((ts(2024, 1, 1), ts(2025, 1, 1)), (ts(2024, 3, 1), ts(2024, 4, 1)), math.sqrt(31 / 366)),  # a year vs a month
        ((ts(2025, 3, 17), ts(2025, 3, 18)), (ts(2025, 3, 10), ts(2025, 3, 17)), 0.5),  # the day after: gap 0
        ((ts(2025, 3, 18), ts(2025, 3, 19)), (ts(2025, 3, 10), ts(2025, 3, 17)), 0.5 * (1 - 1 / 1.75)),
        ((ts(2025, 3, 20), ts(2025, 3, 21)), (ts(2025, 3, 10), ts(2025, 3, 17)), 0.0),  # 3 days off a week
    ],
)
def test_event_fit(event: tuple[float, float], query: tuple[float, float], expected: float) -> None:
    got = event_fit(np.array([event[0]]), np.array([event[1]]), TemporalQuery(ranges=(query,)))
    assert got[0] == pytest.approx(expected)


def test_a_yearless_month_matches_that_month_in_the_events_year_and_the_next() -> None:
    winter = (ts(2024, 12, 1), ts(2025, 3, 1))
    january = TemporalQuery(months=(1,))
    got = event_fit(np.array([winter[0]]), np.array([winter[1]]), january)
    assert got[0] == pytest.approx(math.sqrt(31 / 90))
    july = event_fit(np.array([winter[0]]), np.array([winter[1]]), TemporalQuery(months=(7,)))
    assert july[0] == 0.0
    ev = evidence({"cos": 0.5, "es": ts(2023, 1, 5), "ee": ts(2023, 1, 6)}, {"cos": 0.52})
    assert ranked(ev, "what did I do in January")[0].index == 0


def test_memories_without_event_periods_score_as_before_event_dates_existed() -> None:
    """The recorded scores of tests/unit/test_ranking.py (absolute dates and months over random evidence),
    reproduced to the last bit with event columns present but empty and the event channel on."""
    recorded = json.loads(golden.GOLDEN.read_text())
    events = TemporalQuery(ranges=tuple(golden.PERIODS), months=tuple(golden.MONTHS))
    for c in golden.COLLECTIONS:
        for weights_name, weights in golden.WEIGHT_SETS.items():
            for graph in (False, True):
                ev = golden.random_evidence(c, graph=graph)
                ev = replace(ev, event_start=np.full(c.n, np.nan), event_end=np.full(c.n, np.nan))
                w = replace(weights, graph=golden.GRAPH_WEIGHT) if graph else weights
                scored = rank(
                    ev, periods=golden.PERIODS, months=golden.MONTHS, weights=w, gap_s=c.gap_s, limit=c.n, events=events
                )
                name = f"{c.name} / {weights_name} / graph {'on' if graph else 'off'}"
                assert golden.recorded(scored) == recorded[name], name


def test_a_query_naming_no_time_gives_no_temporal_score() -> None:
    assert all(x.temporal == 0 for x in ranked(DINNERS, "Where did I have dinner with Maya?"))


def test_explanations_say_which_time_and_channel() -> None:
    h = hints("dinner last week", REF)

    def why(created: datetime, event: tuple[datetime, datetime] | None) -> str:
        return explain(h.ranges, h.periods, created, event, UTC)

    week = (datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 3, 17, tzinfo=UTC))
    assert why(REF, week) == 'event 2025-03-10..2025-03-16 (week) overlaps "last week" (2025-03-10..2025-03-16): 1.00'
    assert why(REF, None) == 'recorded 2025-03-21, within 7 d after "last week" (2025-03-10..2025-03-16)'
    assert why(REF, (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))) == (
        'recorded 2025-03-21, within 7 d after "last week" (2025-03-10..2025-03-16); counts 0.25 '
        "(the memory has event dates)"
    )
    told_then = datetime(2025, 3, 12, 9, tzinfo=UTC)
    assert why(told_then, (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))) == (
        'recorded 2025-03-12, within "last week" (2025-03-10..2025-03-16)'
    )
    assert why(told_then, None) == 'recorded 2025-03-12, within "last week" (2025-03-10..2025-03-16)'
    assert why(REF - timedelta(days=60), None) == (
        'no event dates, and not recorded within "last week" (2025-03-10..2025-03-16)'
    )


def test_the_explanations_number_is_the_fit_ranking_used() -> None:
    """The words of `score_reasons` are computed apart (plain floats, for the few hits returned): they must say
    the very fit the vectorised ranking computed."""
    rng = np.random.default_rng(21)
    day = 86400.0
    for _ in range(500):
        es = ts(2025, 1, 1) + rng.uniform(0, 200) * day
        ee = es + rng.choice([1, 7, 30, 365]) * day
        qs = ts(2025, 1, 1) + rng.uniform(0, 200) * day
        qe = qs + rng.choice([1, 7, 30, 91]) * day
        vectorised = event_fit(np.array([es]), np.array([ee]), TemporalQuery(ranges=((qs, qe),)))[0]
        assert temporal._fit_one(es, ee, qs, qe)[0] == vectorised
