"""The garbage collector of a long-running process (``serve``, ``project``): settled once started.

CPython's cyclic collector runs a full collection (every object the process holds) after every ten
collections of the middle generation, while the objects that survived the last full collection
grew by a quarter. In a server that keeps caches (aggregates, positions, statements) and allocates
for every request, that came every 2 s under load: ``serve`` at 32 clients made 9 full collections
in 20 s, pausing every thread for 50-450 ms each (wall, on a loaded machine), longer than a
command's whole p99 budget; its ``project`` child the same.

:func:`settle` (once the process has started) collects once, moves every object start-up built out
of the collector's reach (``gc.freeze``: routes, templates, caches that live as long as the
process), and makes a full collection ten times rarer (``FULL_EVERY``). Young objects are
collected as before, so cyclic garbage is still freed (at the latest by the next full collection)
and memory stays bounded. Measured with ``python bench/bench_http.py --store sqlite --clients 32``
(``gc.callbacks`` counting): full collections during a 20 s run 9 -> 1.
"""

from __future__ import annotations

import gc

#: Collections of the middle generation between two full collections (CPython's default: 10).
FULL_EVERY = 100


def settle() -> None:
    """Collect, freeze what start-up built, and make full collections rarer (see the module's doc)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
