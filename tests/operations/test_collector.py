"""A started server settles its garbage collector: start-up's objects frozen, full collections rarer,
cyclic garbage still freed. Run in a child interpreter: freezing this test process would keep the
whole suite's objects out of the collector's reach."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.api.test_e2e_serve import REPO
from ticketflow import collector

SCRIPT = """
import gc, json, weakref
from ticketflow import collector
before = gc.get_threshold()
started = [object() for _ in range(1000)]  # what start-up built
collector.settle()
frozen = gc.get_freeze_count()
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made while serving, then dropped
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": frozen, "cycle_freed": gone() is None}))
"""


def test_a_settled_collector_freezes_start_up_makes_full_collections_rarer_and_still_frees_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
    seen = json.loads(done.stdout)
    assert seen["frozen"] >= 1000
    assert seen["after"][:2] == seen["before"][:2]  # young generations collected as before
    assert seen["before"][2] == 10 and seen["after"][2] == collector.FULL_EVERY == 100  # full collections ten times rarer
    assert seen["cycle_freed"]
