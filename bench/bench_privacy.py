"""What per-customer encryption and sealing cost on the write path: the same commands with both on and off.

    python bench/bench_privacy.py [--tickets 300] [--rounds 3]

Each ticket: open (subject and description sealed), reply and note (bodies sealed), solve
(resolution sealed), close: 5 commands on a fresh SQLite store. "On": personal fields sealed
under the customer's key (AES-256-GCM) and the sealer thread hashing, chaining and
checkpointing the log alongside (embedded, as in ``serve``); "off": neither. Rounds alternate; the best
round of each is compared (a shared, noisy machine). Target: >= 0.75x. ``--memory`` measures the CPU cost alone (no fsync, whose
variance on a shared disk swamps the difference).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from projections.integrity.sealer import Sealer
from ticketflow.application import TicketDesk
from ticketflow.commands import AddNote, CloseTicket, FormTeam, OpenTicket, PostReply, RegisterCustomer, SolveTicket
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

ADMIN = Caller("bench", Role.ADMIN, Channel.CLI)
AGENT = Caller("li.wei", Role.AGENT, Channel.API)


def round_(tickets: int, encrypt: bool, memory: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        where = {"database_url": "memory://"} if memory else {"data_dir": Path(tmp)}
        desk = TicketDesk(Settings(**where, encrypt_personal_data=encrypt))
        sealer = Sealer(desk, every_events=1000, every_seconds=5) if encrypt else None
        if sealer is not None:
            sealer.start()
        team = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
        customers = [desk.register_customer(RegisterCustomer(name=f"王小明{i}", email=f"u{i}@example.cn"), ADMIN).object_id
                     for i in range(50)]
        started = time.perf_counter()
        for i in range(tickets):
            customer = customers[i % len(customers)]
            caller = Caller(str(customer), Role.CUSTOMER, Channel.WEB_FORM)
            ticket = desk.open_ticket(OpenTicket(subject=f"无法登录 {i}", description="登录时提示密码错误",
                                                 requester_id=customer, team_id=team), caller).object_id
            desk.post_reply(PostReply(ticket_id=ticket, body="您好, 请重置密码后再试"), AGENT)
            desk.add_note(AddNote(ticket_id=ticket, body="checked the logs"), AGENT)
            desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="重置了密码"), AGENT)
            desk.close_ticket(CloseTicket(ticket_id=ticket), AGENT)
        elapsed = time.perf_counter() - started
        if sealer is not None:
            sealer.close()
        desk.close()
        return tickets * 5 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="the in-memory store: the CPU cost alone, no fsync")
    args = parser.parse_args()
    best = {False: 0.0, True: 0.0}
    for r in range(args.rounds):
        for encrypt in (False, True):
            rate = round_(args.tickets, encrypt, args.memory)
            best[encrypt] = max(best[encrypt], rate)
            print(f"round {r + 1}: encryption + sealer {'on ' if encrypt else 'off'}: {rate:,.0f} commands/s")
    print(f"write path: neither {best[False]:,.0f}/s, encryption + sealer {best[True]:,.0f}/s, "
          f"ratio {best[True] / best[False]:.2f}x (target >= 0.75x)")


if __name__ == "__main__":
    main()
