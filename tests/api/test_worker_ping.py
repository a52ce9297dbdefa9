"""The supervisor's ping of a ``serve --workers N`` worker: answered, unanswered, and a worker that dies
while the ping is out (found at once, not when the healthcheck timeout runs out)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import cast

from uvicorn.supervisors.multiprocess import Process

from api.server import answers


@dataclass
class FakeChild:
    """Stands for the worker's OS process: alive for its first ``lives`` looks."""

    lives: int
    looks: int = 0

    def is_alive(self) -> bool:
        self.looks += 1
        return self.looks <= self.lives


@dataclass
class FakeWorker:
    process: FakeChild
    parent_conn: Connection = field(init=False)
    child_conn: Connection = field(init=False)

    def __post_init__(self) -> None:
        self.parent_conn, self.child_conn = Pipe()


def test_a_worker_that_answers_the_ping_is_alive() -> None:
    worker = FakeWorker(FakeChild(lives=100))

    def pong() -> None:
        worker.child_conn.recv()
        worker.child_conn.send(True)  # as uvicorn's worker: whether its server has started

    answering = threading.Thread(target=pong)
    answering.start()
    assert answers(cast(Process, worker), timeout=30)
    answering.join()


def test_a_worker_that_dies_while_the_ping_is_out_is_found_at_the_next_look_not_at_the_timeout() -> None:
    child = FakeChild(lives=2)  # alive when pinged and at the first look, then gone
    worker = FakeWorker(child)
    assert not answers(cast(Process, worker), timeout=3600)  # would wait an hour for a pong that cannot come
    assert child.looks == 3


def test_a_live_worker_that_never_answers_is_given_up_at_the_timeout() -> None:
    child = FakeChild(lives=10**6)
    worker = FakeWorker(child)
    assert not answers(cast(Process, worker), timeout=0.6)
    assert child.looks >= 3  # looked at between slices of the wait


def test_a_dead_worker_is_not_pinged() -> None:
    worker = FakeWorker(FakeChild(lives=0))
    assert not answers(cast(Process, worker), timeout=3600)
    assert not worker.child_conn.poll()
