"""A queue as of a business instant vs as of a recorded one, on a SQLite desk with imported history.

    PYTHONPATH=. python bench/bench_asof_business.py [TICKETS]   (default 1000: about 5,000 events)

The history is the time-travel tests' (tests/timetravel/test_business_time.py: seeded, early 2016).
The first request builds the temporary view (business time replays the whole log; recorded time
replays up to the instant's log position); the repeat answers from the cached view.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tests.api.conftest import build_api
from tests.timetravel.test_business_time import START, import_history
from ticketflow.config import Settings
from ticketflow.timetravel import TimeBasis


def main(tickets: int) -> None:
    settings = Settings(data_dir=Path(tempfile.mkdtemp()) / "data", automation=False,
                        rate_limit_burst=10**6, rate_limit_per_second=10**6)
    for api in build_api(settings):
        started = time.perf_counter()
        import_history(api, tickets=tickets)
        imported = time.perf_counter() - started
        events = api.desk.log_position()
        for basis, when in ((TimeBasis.BUSINESS, START + timedelta(days=10)), (TimeBasis.RECORDED, api.recorded_now())):
            params = {"as_of": when.isoformat(), "as_of_basis": basis.value, "limit": 200}
            timings = []
            for _ in range(2):
                started = time.perf_counter()
                response = api.get("admin", "/api/v1/tickets", params=params)
                timings.append((time.perf_counter() - started) * 1000)
            print(f"{basis.value}: log {events} events, {len(response.json()['items'])} tickets listed; "
                  f"first request {timings[0]:.0f} ms (builds the view), repeat {timings[1]:.0f} ms")
        print(f"import of {tickets} tickets through the application: {imported:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
