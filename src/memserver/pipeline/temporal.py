"""The temporal part of the hybrid score (no I/O): how well a memory's time fits the times a query names.

Two channels, per query range Q:

* the event channel, when the memory has event dates E (the period its content is about): overlapping,
  `sqrt(|E and Q| / |E|)` (1 for an event inside Q, 0.29 for a year-long event against one month, about 0 for
  a decade); not overlapping, a near miss `0.5 * max(0, 1 - gap / tol)` with `tol = max(1 day, |Q| / 4)`,
  which absorbs calendar against rolling weeks and a day's skew between zones. A month named without a year
  is that month in E's start year and in the next.
* the recorded channel: whether the memory was recorded within Q, or up to a week after it (`pipeline.query`:
  people talk about what happened for some days after), as before event dates existed. For a memory that has
  event dates, that week after Q counts only RECORDED_SHARE: its event dates say what it is about, and "told
  three days after last week" is no sign of being about last week (the issue's three dinners, all told today,
  are told apart by what they are about). Being recorded within a past Q itself still counts fully: the
  telling happened then, and a question may be about that occasion. On LoCoMo-ER the questions name the day
  a thing was said ("What painting did Melanie show on October 13, 2023?"), and the turn that says it is
  often about days before ("one I did last week"): with the share applied within Q as well, category 4
  lost 1.2 points of frac@10 (0.883 -> 0.871), and 0.5 points (0.883 -> 0.878) with it applied only where
  the event dates lie elsewhere (no overlap, no near miss). A Q that contains the query's now ("this
  month", "recently", "currently") is different: everything told lately was recorded within it, so being
  recorded there says nothing of what a memory is about, and where the event dates lie elsewhere it counts
  RECORDED_SHARE ("went skiing in January", told this month, is no answer to "this month").

fit = max over Q of max(event, share x recorded); the temporal score is the `time` weight times the fit. A
memory without event dates therefore scores exactly as it did before event dates existed, and a query that
names no time gives every memory 0 (`pipeline.ranking` never calls this then).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
from numpy.typing import NDArray

from memserver.domain.dates import granularity
from memserver.pipeline.time_expressions import TimeRange

RECORDED_SHARE = 0.25  # the recorded channel's weight for a memory that has event dates
DAY_S = 86400.0
NEAR_MISS = 0.5  # the most a range that does not overlap the event can give


@dataclass(frozen=True)
class TemporalQuery:
    """The times a query names, for the event channel: ranges in epoch seconds, and months of any year."""

    ranges: tuple[tuple[float, float], ...] = ()
    months: tuple[int, ...] = ()
    now: float = math.nan  # the query's "now" (epoch seconds); NaN: no range counts as current

    @classmethod
    def of(cls, ranges: Sequence[TimeRange], now: datetime | None = None) -> TemporalQuery:
        return cls(
            ranges=tuple((r.start.timestamp(), r.end.timestamp()) for r in ranges if r.month is None),
            months=tuple(sorted({r.month for r in ranges if r.month is not None})),
            now=math.nan if now is None else now.timestamp(),
        )

    def split(self) -> tuple[TemporalQuery, TemporalQuery]:
        """(the ranges and months that are over or to come, those that contain now): `fit`'s two kinds of Q."""
        current = {q for q in self.ranges if q[0] <= self.now <= q[1]}
        this_month = _month_of(self.now) if not math.isnan(self.now) else None
        return (
            TemporalQuery(
                tuple(q for q in self.ranges if q not in current), tuple(m for m in self.months if m != this_month)
            ),
            TemporalQuery(
                tuple(q for q in self.ranges if q in current), tuple(m for m in self.months if m == this_month)
            ),
        )


def fit(
    recorded: NDArray[np.float64],
    created: NDArray[np.float64],
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    query: TemporalQuery,
) -> NDArray[np.float64]:
    """Each memory's temporal fit in [0, 1], from its recorded-date hits (0/1, report week included), when it
    was recorded and its event period (epoch seconds, NaN without one). Where a memory has no event period the
    fit is `recorded`, unchanged."""
    event = event_fit(start, end, query)
    past, current = query.split()
    # the telling counts fully within a past Q, and within a current one where the event dates agree
    told_then = recorded_within(created, past) | (recorded_within(created, current) & (event > 0))
    share = np.where(np.isnan(start) | told_then, 1.0, RECORDED_SHARE)
    combined: NDArray[np.float64] = np.maximum(event, share * recorded)
    return combined


def recorded_within(created: NDArray[np.float64], query: TemporalQuery) -> NDArray[np.bool_]:
    """Recorded within one of the query's ranges itself (not in the week after it), or in one of its months."""
    inside = np.zeros(len(created), dtype=bool)
    for first, after in query.ranges:
        inside |= (created >= first) & (created < after)
    if query.months:
        month = np.floor(created).astype(np.int64).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        inside |= np.isin(month % 12 + 1, np.asarray(query.months))
    return inside


def event_fit(start: NDArray[np.float64], end: NDArray[np.float64], query: TemporalQuery) -> NDArray[np.float64]:
    """The event channel: the best fit of each event period with any of the query's ranges (0 without one)."""
    has = ~np.isnan(start)
    es, ee = np.where(has, start, 0.0), np.where(has, end, 1.0)
    best = np.zeros(len(start))
    for first, after in query.ranges:
        best = np.maximum(best, _overlap_fit(es, ee, first, after))
    if query.months:
        year = es.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970
        for month in query.months:
            for y in (year, year + 1):
                best = np.maximum(best, _overlap_fit(es, ee, _month_bounds(y, month), _month_bounds(y, month + 1)))
    scored: NDArray[np.float64] = np.where(has, best, 0.0)
    return scored


def _overlap_fit(
    es: NDArray[np.float64], ee: NDArray[np.float64], qs: NDArray[np.float64] | float, qe: NDArray[np.float64] | float
) -> NDArray[np.float64]:
    inter = np.minimum(ee, qe) - np.maximum(es, qs)
    overlap = np.sqrt(np.clip(inter, 0.0, None) / np.maximum(ee - es, 1.0))
    gap = np.maximum(qs - ee, es - qe)
    tol = np.maximum(DAY_S, (qe - qs) / 4)
    near = NEAR_MISS * np.clip(1 - gap / tol, 0.0, None)
    out: NDArray[np.float64] = np.where(inter > 0, overlap, near)
    return out


def _month_of(epoch: float) -> int:
    return datetime.fromtimestamp(epoch, UTC).month


def _month_bounds(year: NDArray[np.int64], month: int) -> NDArray[np.float64]:
    """Epoch seconds of the first of `month` (13 = January of the next year) of each year, in UTC."""
    months = (year - 1970) * 12 + (month - 1)
    bounds: NDArray[np.float64] = months.astype("datetime64[M]").astype("datetime64[s]").astype(np.float64)
    return bounds


# ----------------------------------------------------------------------------------------------
# why a hit got its temporal score (for the few hits returned, in words)
# ----------------------------------------------------------------------------------------------
def explain(
    ranges: Sequence[TimeRange],
    periods: Sequence[tuple[datetime, datetime]],
    created: datetime,
    event: tuple[datetime, datetime] | None,
    zone: tzinfo,
    now: datetime | None = None,
) -> str:
    """One sentence saying which named time gave a memory its temporal score, through which channel, and how
    much (the fit, before the `time` weight). `periods` are the recorded-date windows of `ranges`' concrete
    ones, in order (`pipeline.query.hints`); `now` is the query's (`TemporalQuery.now`)."""
    windows = iter(periods)
    best: tuple[float, str] = (0.0, "")
    events = [_event_reason(r, event, zone) for r in ranges]
    elsewhere = event is not None and all(value <= 0 for value, _ in events)  # `fit`: no overlap, no near miss
    for r, by_event in zip(ranges, events, strict=True):
        window = next(windows) if r.month is None else None
        aside = elsewhere and now is not None and _contains_now(r, now)
        for option in (by_event, _recorded_reason(r, window, created, event is not None, aside, zone)):
            if option[0] > best[0]:
                best = option
    if best[0] > 0:
        return best[1]
    named = ", ".join(_named(r, zone) for r in ranges)
    if event is None:
        return f"no event dates, and not recorded within {named}"
    return f"event {_dates(event[0], event[1], zone)} ({granularity(*event)}): no overlap with {named}"


def _contains_now(r: TimeRange, now: datetime) -> bool:
    """`TemporalQuery.split` for one range: a concrete range around now, or the month now is in."""
    if r.month is not None:
        return r.month == now.astimezone(UTC).month
    return r.start.timestamp() <= now.timestamp() <= r.end.timestamp()


def _named(r: TimeRange, zone: tzinfo) -> str:
    return f'"{r.text}" ({_span(r, zone)})'


def _event_reason(r: TimeRange, event: tuple[datetime, datetime] | None, zone: tzinfo) -> tuple[float, str]:
    if event is None:
        return 0.0, ""
    es, ee = event[0].timestamp(), event[1].timestamp()
    if r.month is None:
        spans = [(r.start.timestamp(), r.end.timestamp())]
    else:  # that month in the event's start year and in the next, as `event_fit` reads it
        year = event[0].astimezone(UTC).year
        spans = [
            (
                datetime(y, r.month, 1, tzinfo=UTC).timestamp(),
                datetime(y + r.month // 12, r.month % 12 + 1, 1, tzinfo=UTC).timestamp(),
            )
            for y in (year, year + 1)
        ]
    value, overlaps = max(_fit_one(es, ee, first, after) for first, after in spans)
    if value <= 0:
        return 0.0, ""
    what = f"event {_dates(event[0], event[1], zone)} ({granularity(*event)})"
    return value, f"{what} {'overlaps' if overlaps else 'is near'} {_named(r, zone)}: {value:.2f}"


def _fit_one(es: float, ee: float, qs: float, qe: float) -> tuple[float, bool]:
    """`_overlap_fit` for one event and one range, in plain floats (a hit's explanation), and whether they overlap."""
    inter = min(ee, qe) - max(es, qs)
    if inter > 0:
        return math.sqrt(inter / max(ee - es, 1.0)), True
    gap, tol = max(qs - ee, es - qe), max(DAY_S, (qe - qs) / 4)
    return NEAR_MISS * max(0.0, 1 - gap / tol), False


def _recorded_reason(
    r: TimeRange,
    window: tuple[datetime, datetime] | None,
    created: datetime,
    has_event: bool,
    elsewhere: bool,
    zone: tzinfo,
) -> tuple[float, str]:
    if r.month is not None:
        utc = created.astimezone(UTC)
        proper, late = utc.month == r.month, (utc - timedelta(days=7)).month == r.month
        where = f"in {_named(r, zone)}" if proper else f"in the week after {_named(r, zone)}"
    else:
        assert window is not None
        proper, late = r.start <= created < r.end, r.end <= created < window[1]
        where = (
            f"within {_named(r, zone)}" if proper else f"within {(window[1] - r.end).days} d after {_named(r, zone)}"
        )
    if not (proper or late):
        return 0.0, ""
    value = RECORDED_SHARE if has_event and (elsewhere or not proper) else 1.0
    why = "its event dates are elsewhere" if proper else "the memory has event dates"
    counts = f"; counts {value:.2f} ({why})" if value < 1 else ""
    return value, f"recorded {_dates(created, created, zone)}, {where}{counts}"


def _span(r: TimeRange, zone: tzinfo) -> str:
    if r.month is not None:
        return f"{r.start.astimezone(zone):%B} of any year"
    return _dates(r.start, r.end, zone)


def _dates(start: datetime, end: datetime, zone: tzinfo) -> str:
    """A half-open span as local dates, the last one inclusive ("2025-03-10..2025-03-16"); one date for a day."""
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date() if end > start else first
    return str(first) if first == last else f"{first}..{last}"
