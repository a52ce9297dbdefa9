"""The open-ticket load chart: at each sampled instant, the tickets open then (opened at or before it,
not yet solved, closed or merged), counted from each ticket's open spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ticketflow.whatif.report import LOAD_SAMPLES, Period, _open_load

Spans = list[tuple[datetime, datetime | None]]
PERIOD = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
STEP = (PERIOD.until - PERIOD.since) / (LOAD_SAMPLES - 1)
# Spans starting and stopping anywhere around the period, often exactly at a sampled instant.
moments = st.one_of(
    st.integers(-3, LOAD_SAMPLES + 2).map(lambda n: PERIOD.since + STEP * n),
    st.datetimes(datetime(2026, 2, 27), datetime(2026, 3, 5), timezones=st.just(UTC)),
)
spans = st.tuples(moments, st.one_of(st.none(), st.timedeltas(timedelta(0), timedelta(days=3)))).map(
    lambda s: (s[0], None if s[1] is None else s[0] + s[1])
)


@settings(max_examples=60, deadline=None)
@given(st.lists(spans, max_size=12), st.lists(spans, max_size=12))
def test_each_instant_counts_the_spans_open_at_it(recorded: Spans, candidate: Spans) -> None:
    load = _open_load({"Team A": {"recorded": recorded, "candidate": candidate}}, PERIOD, None)
    instants = [datetime.fromisoformat(at) for at in load["at"]]
    assert len(instants) == LOAD_SAMPLES

    def open_at(side: Spans, at: datetime) -> int:
        return sum(1 for start, stop in side if start <= at and (stop is None or stop > at))

    expected = {
        side: [open_at(s, at) for at in instants]
        for side, s in (("recorded", recorded), ("candidate", candidate))
    }
    if any(expected["recorded"]) or any(expected["candidate"]):
        assert load["teams"] == [{"team": "Team A", **expected}]
    else:
        assert load["teams"] == []
