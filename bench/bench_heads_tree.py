"""The sealer's heads tree at a checkpoint: kept between checkpoints (format 2) against built again.

    python bench/bench_heads_tree.py [--streams 100000,1000000] [--moved 500] [--new 300] [--rounds 3]

For each size: a heads dict of that many streams (random ids, in first-event order), the tree built
once, then ``--rounds`` checkpoints, each after ``--moved`` heads moved and ``--new`` streams began:
CPU per checkpoint of :class:`projections.integrity.sealer.HeadsTree` (what the sealer does) and of
``heads_levels(heads, format=1)`` (format 1's tree sorted by id, built from scratch: a new stream sorted in
shifts every leaf after it, so any sorted tree hashes most inner nodes again). Both roots are
checked against ``heads_levels`` each round.
"""

from __future__ import annotations

import argparse
import random
import time
from uuid import UUID

from ticketflow_verify.chain import heads_levels, root_of

from projections.integrity.sealer import HeadsTree


def run(streams: int, moved: int, new: int, rounds: int) -> None:
    rng = random.Random(streams)
    heads = {str(UUID(int=rng.getrandbits(128))): (1, rng.randbytes(32)) for _ in range(streams)}
    tree, size = HeadsTree(), streams  # (as if each stream had one event so far)
    started = time.process_time()
    tree.root(heads, size)
    built = time.process_time() - started
    kept, scratch = [], []
    for _ in range(rounds):
        moving = set(rng.sample(list(heads), moved))
        for oid in moving:
            heads[oid] = (heads[oid][0] + 1, rng.randbytes(32))
        fresh = [str(UUID(int=rng.getrandbits(128))) for _ in range(new)]
        for oid in fresh:
            heads[oid] = (1, rng.randbytes(32))
        tree.moved(heads, fresh, moving | set(fresh), size, size + moved + new)
        size += moved + new
        started = time.process_time()
        root = tree.root(heads, size)
        kept.append(time.process_time() - started)
        started = time.process_time()
        heads_levels(heads, format=1)
        scratch.append(time.process_time() - started)
        assert root == root_of(heads_levels(heads, format=2)[1])
    print(
        f"{len(heads):>10,} streams: built once {built:.2f} s; a checkpoint ({moved} moved, {new} new): kept "
        + " / ".join(f"{t * 1000:.1f}" for t in kept) + " ms, format 1 from scratch "
        + " / ".join(f"{t * 1000:.0f}" for t in scratch) + " ms (CPU)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="100000,1000000")
    parser.add_argument("--moved", type=int, default=500)
    parser.add_argument("--new", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for streams in (int(s) for s in args.streams.split(",")):
        run(streams, args.moved, args.new, args.rounds)


if __name__ == "__main__":
    main()
