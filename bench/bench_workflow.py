"""What the workflow automation costs: command throughput with and without it, and the SLA clock.

    python bench/bench_workflow.py [--tickets 300] [--rounds 3] [--sla-tickets 100000]

1. **Write path.** The same client workload (open a ticket to a team, reply, add a note, solve:
   4 commands) on a fresh SQLite store with the views running embedded, once with the
   automation idle (no routing rules, no SLA policy: it finds nothing to do) and once with
   routing rules, an SLA policy and the automation thread routing, measuring and sending
   surveys alongside. Rounds alternate; the best of each is compared (a shared, noisy
   machine). The ratio is client commands/s with automation / without (target >= 0.8).
2. **SLA clock.** N open tickets (in memory) each with an SLA policy applied; then the time
   to measure all of them with the policy's business calendar, as one pass of the SLA
   clock does when every ticket is due, and the time of the due-work query on N rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from projections.automation import Automation
from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.automation import calendar_from_spec
from ticketflow.clock import FakeClock, SystemClock
from ticketflow.commands import AddNote, AddTeamMember, FormTeam, OpenTicket, PostReply, RegisterCustomer, SolveTicket
from ticketflow.commands.workflow import ApplySla, DefineCalendar, DefineSlaPolicy, PublishRoutingRules
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Consent, Role
from ticketflow.metadata import Caller
from ticketflow.sla.decide import targets_of
from ticketflow.sla.measure import measure

ADMIN = Caller("bench", Role.ADMIN, Channel.CLI)
AGENT = Caller("li.wei", Role.AGENT, Channel.API)
SYSTEM = Caller("automation", Role.SYSTEM, Channel.SYSTEM)


def setup(desk: TicketDesk, workflow: bool) -> tuple:
    team = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    for agent in ("li.wei", "emma.clark", "zhang.min"):
        desk.add_team_member(AddTeamMember(team_id=team, agent_id=agent), ADMIN)
    customer = desk.register_customer(
        RegisterCustomer(name="王小明", email="x@example.cn", consents=[Consent.SERVICE, Consent.SURVEYS]), ADMIN
    ).object_id
    if workflow:
        desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=team), ADMIN)
        calendar = desk.define_calendar(DefineCalendar(
            name="上海", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)},
        ), ADMIN).object_id
        desk.define_sla_policy(DefineSlaPolicy.model_validate({
            "name": "standard", "position": 0, "calendar_id": calendar,
            "targets": {p: {"first_reply_time": {"minutes": 60}, "resolution_time": {"minutes": 480}}
                        for p in ("low", "normal", "high", "urgent")},
        }), ADMIN)
    return team, customer


def write_round(tickets: int, workflow: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        desk = TicketDesk(Settings(data_dir=Path(tmp)), clock=SystemClock())
        team, customer = setup(desk, workflow)
        read_side = ReadSide(desk)
        read_side.start()
        automation = Automation(desk, read_side, interval=0.2)
        automation.start()
        customer_caller = Caller(str(customer), Role.CUSTOMER, Channel.WEB_FORM)
        started = time.perf_counter()
        for i in range(tickets):
            ticket = desk.open_ticket(OpenTicket(subject=f"无法登录 {i}", requester_id=customer, team_id=team),
                                      customer_caller).object_id
            desk.post_reply(PostReply(ticket_id=ticket, body="您好, 正在处理"), AGENT)
            desk.add_note(AddNote(ticket_id=ticket, body="checked the logs"), AGENT)
            desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="reset"), AGENT)
        elapsed = time.perf_counter() - started
        automation.stop()
        drain = time.perf_counter()
        while True:  # what the automation had not done yet when the clients finished
            read_side.wait(desk.log_position(), timeout=30)
            if sum(automation.run_once().values()) == 0:
                break
        drain = time.perf_counter() - drain
        read_side.close()
        events = desk.log_position()
        desk.close()
        print(f"    {'with' if workflow else 'without'} automation: backlog drained {drain:.2f} s after the clients")
        return tickets * 4 / elapsed, events


def sla_clock(n: int) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    desk = TicketDesk(Settings(database_url="memory://", aggregate_cache_size=0), clock=clock)
    team, customer = setup(desk, True)
    customer_caller = Caller(str(customer), Role.CUSTOMER, Channel.WEB_FORM)
    started = time.perf_counter()
    ids = []
    for i in range(n):
        clock.advance(timedelta(seconds=5))
        ticket = desk.open_ticket(OpenTicket(subject=f"t{i}", requester_id=customer, team_id=team), customer_caller)
        desk.apply_sla(ApplySla(ticket_id=ticket.object_id), SYSTEM)
        ids.append(ticket.object_id)
    print(f"sla: {n} open tickets with an SLA policy created in {time.perf_counter() - started:.1f} s")
    histories = [desk.history(t) for t in ids]
    terms = desk.get_ticket(ids[0]).sla
    targets, calendar = targets_of(terms), calendar_from_spec(terms["calendar"])
    now = clock.now() + timedelta(hours=3)
    started = time.perf_counter()
    states: dict[str, int] = {}
    for events in histories:
        for m in measure(events, targets, calendar, now, 0.8):
            states[m.state.value] = states.get(m.state.value, 0) + 1
    measured = time.perf_counter() - started
    print(f"sla: measured {n} open tickets' clocks in {measured:.2f} s ({n / measured:,.0f} tickets/s); {states}")
    with tempfile.TemporaryDirectory() as tmp:
        file_desk = TicketDesk(Settings(data_dir=Path(tmp)))
        read_side = ReadSide(file_desk, ["workflow"])
        store = read_side.stores["workflow"]
        with store._transaction(commit=True) as cursor:  # noqa: SLF001 - seed the due-work table directly
            cursor.executemany(
                "INSERT INTO tf_work (kind, object_id, due_at, state, stamp) VALUES ('sla', ?, ?, 'due', ?)",
                [(str(t), (now + timedelta(minutes=i % 600)).isoformat(), i) for i, t in enumerate(ids)],
            )
        from projections.workflow import due_work
        started = time.perf_counter()
        rows = read_side.read("workflow", lambda db: due_work(db, "sla", (now + timedelta(minutes=5)).isoformat()))
        print(f"sla: due-work query over {n} rows: {len(rows)} due in {(time.perf_counter() - started) * 1000:.1f} ms")
        read_side.close()
        file_desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sla-tickets", type=int, default=100_000)
    args = parser.parse_args()
    best = {False: 0.0, True: 0.0}
    for r in range(args.rounds):
        for workflow in (False, True):
            rate, events = write_round(args.tickets, workflow)
            best[workflow] = max(best[workflow], rate)
            print(f"round {r + 1}: automation {'on ' if workflow else 'off'}: {rate:,.0f} commands/s ({events} events)")
    print(f"write path: without {best[False]:,.0f}/s, with routing + SLA + surveys {best[True]:,.0f}/s, "
          f"ratio {best[True] / best[False]:.2f}x (target >= 0.8x)")
    if args.sla_tickets:
        sla_clock(args.sla_tickets)


if __name__ == "__main__":
    main()
