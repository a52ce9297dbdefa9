"""The what-if comparison: recorded vs candidate, side by side, as plain data (JSON, CSV, tables).

The same inputs give the same report, byte for byte (:func:`to_json`): keys sorted, lists in
a fixed order, nothing about the run itself (no run time, no timestamps of the run).
"""

from __future__ import annotations

import csv
import io
import json
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketflow.application import TicketDesk
from ticketflow.domain import Team, Ticket
from ticketflow.errors import ValidationFailed
from ticketflow.sla.measure import Metric
from ticketflow.team_names import teams_named
from ticketflow.whatif.candidate import Candidate, build_candidate, read_candidate_file
from ticketflow.whatif.replay import (
    APART_AFTER,
    History,
    Replayed,
    Scenario,
    can_fork,
    fewer_collections,
    known_keys_only,
    read_history,
    replay,
    replay_apart,
)

SEMANTICS = (
    "Customer and staff actions stay as recorded, at their recorded business time (replies are not moved).",
    (
        "What policies decide is decided again by the desk's own code: routing (team, agent, rule, priority and "
        "tags set), the SLA policy applied, its clocks and pauses, warnings, breaches and escalations."
    ),
    (
        "'recorded' replays the period under the policies in force at each point of the log; for live history it "
        "reproduces the automation's recorded decisions (see fidelity). Imported history, which the automation "
        "never worked, is measured under the desk's policies at the end of the log."
    ),
    (
        "'candidate' replays it with the candidate file's routing rules, calendars, SLA policies, teams' assignment "
        "strategies and members in or out of rotation in place of those in force; what the file does not mention "
        "stays as it was then."
    ),
    (
        "Only tickets the router placed are placed again; a ticket placed by hand stays where staff put it. "
        "Recorded staff work on a re-routed ticket by someone outside its new team is counted, not moved."
    ),
    (
        "Auto-closes, follow-ups (回访) and reminders are timed by elapsed days after solving or by the time staff "
        "set (settings, not candidate policies): their counts are the same on both sides; what a candidate routing "
        "changes is whose they are. An auto-close counts for the ticket's team; a follow-up, and a follow-up "
        "reminder fired, for the team and agent that held the ticket when it was solved; a reminder staff set, for "
        "the team and agent it was set for."
    ),
    (
        "The SLA clocks are looked at last (as_of, unless given) at the latest ticket event in the log, not at a "
        "policy or team defined after the tickets: imported history's open cases are measured to the end of its record."
    ),
    (
        "Attainment: SLA clock runs met in time over runs decided (met or breached); runs still open are left out. "
        "Team and priority are those the ticket had once placed."
    ),
)
METRICS = tuple(m.value for m in Metric)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValidationFailed("--from and --to need a time zone (e.g. 2026-03-01T00:00+08:00)")
        if self.until <= self.since:
            raise ValidationFailed("--to must be after --from")


def run_whatif(
    desk: TicketDesk,
    period: Period,
    candidate_file: Path | dict[str, Any],
    team: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    as_of: datetime | None = None,
    teams: Collection[str] | None = None,
    processes: int | None = None,
) -> dict[str, Any]:
    """Replay the period under the recorded and the candidate policies; the comparison as plain data.

    ``progress(done, total)``: called as tickets of the period are replayed (done, out of total),
    first once the log is read (0 done), last when all are.

    ``as_of``: the instant the SLA clocks are looked at last (default: the business time of the latest ticket
    event in the log: a policy defined after imported history does not stretch its open cases' clocks to today).
    ``teams``: like ``team``, several teams at once (a supervisor's what-if covers all their teams).
    ``processes``: 2 replays the recorded and the candidate scenarios at once in two processes (this one
    and a forked one, :func:`~ticketflow.whatif.replay.replay_apart`), 1 both in this one; the report is
    the same, byte for byte. Default: the desk's ``TICKETFLOW_WHATIF_PROCESSES`` (2) for a period of at
    least :data:`~ticketflow.whatif.replay.APART_AFTER` timeline items (steps and load moves), else 1; 1 wherever processes cannot fork."""
    data = read_candidate_file(candidate_file) if isinstance(candidate_file, Path) else candidate_file
    wanted = [*(teams or ()), *([team] if team is not None else [])]
    if as_of is not None and as_of.tzinfo is None:
        raise ValidationFailed("--as-of needs a time zone")
    check_inputs(desk, data, wanted)  # bad input is refused at once, not after the log is read
    with fewer_collections():
        history = read_history(desk, period.since, period.until)
        if as_of is not None:
            history.horizon = as_of
        final_teams = history.policies.snapshots[-1].teams
        teams_by_id = {i: t.name for i, t in final_teams.items()}
        candidate = build_candidate(
            data,
            teams_by_id,
            {i: set(t.members) for i, t in final_teams.items()},
            history.policies.snapshots[-1].calendars,
        )
        team_ids = {t for t in (team_filter(name, teams_by_id) for name in wanted) if t is not None} or None
        recorded = Scenario("recorded", history, None)
        proposed = Scenario("candidate", history, candidate)
        if processes is None:
            processes = desk.settings.whatif_processes if history.timeline.size >= APART_AFTER else 1
        if processes >= 2 and can_fork():
            replay_apart(history, recorded, proposed, progress, in_child=lambda: known_keys_only(desk))
        else:
            replay(history, [recorded, proposed], progress)
        return compare(history, recorded, proposed, candidate, teams_by_id, period, team_ids)


def check_inputs(desk: TicketDesk, data: dict[str, Any], teams: Collection[str] = ()) -> Candidate:
    """The candidate and the team filter checked against the desk as it is now (its teams, their members,
    its calendars): the same checks the replay makes once it has read the log, made before reading it."""
    formed = f"{Team.Formed.__module__}:{Team.Formed.__qualname__}"
    found = [desk.get_team(UUID(str(n.originator_id)))
             for n in desk.recorder.select_notifications(1, 10**9, topics=[formed])]
    names = {t.id: t.name for t in found}
    candidate = build_candidate(
        data, names, {t.id: set(t.members) for t in found}, {c.id for c in desk.calendars()}
    )
    for name in teams:
        team_filter(name, names)
    return candidate


def team_filter(team: str | None, teams: dict[UUID, str]) -> UUID | None:
    if team is None:
        return None
    try:
        found = UUID(team)
    except ValueError:
        matches = teams_named(teams, team)  # as every --team of the CLI: a name, or half of a bilingual one
        if len(matches) != 1:
            raise ValidationFailed(
                f"--team: {'no' if not matches else 'more than one'} team is called {team!r}"
            ) from None
        return matches[0]
    if found not in teams:
        raise ValidationFailed(f"--team: no team has id {found}")
    return found


# ------------------------------------------------------------------ outcomes of one ticket
def _runs(replayed: Replayed) -> dict[tuple[str, str], str]:
    """Each SLA clock run decided in a scenario: (metric, cycle) -> "met" or "breached"."""
    return replayed.runs


def _escalations(replayed: Replayed) -> int:
    return replayed.escalations


def signature(events: Iterable[Ticket.Event], instants: bool = True) -> list[tuple[str, str, str]]:
    """Decisions as comparable values: what was decided, with what, and (``instants``) at which business time."""
    return [
        (
            type(e).__qualname__,
            json.dumps(e.payload(), sort_keys=True, default=str),
            e.occurred_at.isoformat() if instants else "",
        )
        for e in events
    ]


# ------------------------------------------------------------------ the comparison
def compare(
    history: History,
    recorded: Scenario,
    proposed: Scenario,
    candidate: Candidate,
    teams: dict[UUID, str],
    period: Period,
    team_ids: Collection[UUID] | None,
) -> dict[str, Any]:
    def team_name(team: UUID | None) -> str:
        return "(none)" if team is None else teams.get(team, str(team))

    attainment: dict[tuple[str, str, str], dict[str, Counter[str]]] = {}
    newly: list[dict[str, str]] = []
    no_longer: list[dict[str, str]] = []
    escalated: dict[str, list[str]] = {"recorded": [], "candidate": []}
    escalations = Counter[str]()
    per_team: dict[str, Counter[str]] = {}
    per_agent: dict[str, Counter[str]] = {}
    changed_routes: list[dict[str, Any]] = []
    outside_work = Counter[str]()
    fidelity_differs: list[str] = []
    spans: dict[str, dict[str, list[tuple[datetime, datetime | None]]]] = {}  # team -> side -> open spans
    automation: dict[str, dict[Any, Counter[str]]] = {
        "auto_closes": {},
        "follow_ups": {},
        "reminders_fired": {},
    }  # what -> team, or (team, agent) -> side -> count
    late = 0  # same decisions, written later than the replay's ideal automation would (a pass's lag)
    live = imported = 0
    final_teams = history.policies.snapshots[-1].teams
    for ticket_id in sorted(recorded.tickets, key=str):
        was, now = recorded.tickets[ticket_id], proposed.tickets[ticket_id]
        if team_ids is not None and was.placed_team not in team_ids and now.placed_team not in team_ids:
            continue
        key = str(ticket_id)
        source = history.tickets[ticket_id]
        if source.imported:
            imported += 1
        else:
            live += 1
            if signature(source.decisions, instants=False) != signature(was.decisions, instants=False):
                fidelity_differs.append(key)
            elif signature(source.decisions) != signature(was.decisions):
                late += 1
        for side, replayed in (("recorded", was), ("candidate", now)):
            team = team_name(replayed.placed_team)
            for (metric, _cycle), outcome in _runs(replayed).items():
                cell = attainment.setdefault((team, replayed.priority, metric), {})
                cell.setdefault(side, Counter())[outcome] += 1
            if _escalations(replayed):
                escalated[side].append(key)
                escalations[side] += _escalations(replayed)
            per_team.setdefault(team, Counter())[side] += 1
            per_agent.setdefault(replayed.placed_agent or "(unassigned)", Counter())[side] += 1
            for start, end in replayed.open_spans:
                spans.setdefault(team, {}).setdefault(side, []).append((start, end))
            for closed_in in replayed.auto_closes:
                automation["auto_closes"].setdefault(team_name(closed_in), Counter())[side] += 1
        _automation_kept(source, was, now, automation, team_name)
        before, after = _runs(was), _runs(now)
        for run in sorted(set(before) | set(after)):
            entry = {"ticket": key, "metric": run[0], "cycle": run[1]}
            if after.get(run) == "breached" and before.get(run) != "breached":
                newly.append(entry)
            elif before.get(run) == "breached" and after.get(run) != "breached":
                no_longer.append(entry)
        if (was.placed_team, was.placed_agent, was.rule) != (now.placed_team, now.placed_agent, now.rule):
            changed_routes.append(
                {
                    "ticket": key,
                    "recorded": {
                        "team": team_name(was.placed_team),
                        "agent": was.placed_agent,
                        "rule": was.rule,
                    },
                    "candidate": {
                        "team": team_name(now.placed_team),
                        "agent": now.placed_agent,
                        "rule": now.rule,
                    },
                }
            )
        if now.placed_team is not None and now.placed_team != was.placed_team:
            members = set(final_teams[now.placed_team].members) if now.placed_team in final_teams else set()
            done_by = [who for who in now.staff_work if who not in members]
            if done_by:
                outside_work["tickets"] += 1
                outside_work["actions"] += len(done_by)
    return {
        "period": {"from": period.since.isoformat(), "to": period.until.isoformat()},
        "as_of": None if history.horizon is None else history.horizon.isoformat(),
        "team": None if not team_ids else ", ".join(sorted(team_name(t) for t in team_ids)),
        "candidate": candidate.describe(),
        "semantics": list(SEMANTICS),
        "tickets": {"replayed": live + imported, "live": live, "imported": imported},
        "log": {"events_read": history.events_read, "position": history.log_position},
        "fidelity": {
            "live_tickets": live,
            "same_decisions": live - len(fidelity_differs),
            "same_decisions_and_instants": live - len(fidelity_differs) - late,
            "differing": fidelity_differs,
        },
        "sla": [
            {
                "team": team,
                "priority": priority,
                "metric": metric,
                "recorded": _cell(sides.get("recorded")),
                "candidate": _cell(sides.get("candidate")),
            }
            for (team, priority, metric), sides in sorted(
                attainment.items(),
                key=lambda kv: (
                    kv[0][0],
                    kv[0][1],
                    METRICS.index(kv[0][2]) if kv[0][2] in METRICS else 99,
                ),
            )
        ],
        "sla_totals": _totals(attainment),
        "newly_breaching": newly,
        "no_longer_breaching": no_longer,
        "escalations": {
            "recorded": escalations["recorded"],
            "candidate": escalations["candidate"],
            "tickets": {"recorded": escalated["recorded"], "candidate": escalated["candidate"]},
        },
        "routing": {
            "per_team": [
                {"team": t, "recorded": c["recorded"], "candidate": c["candidate"]}
                for t, c in sorted(per_team.items())
            ],
            "per_agent": [
                {
                    "agent": a,
                    "recorded": c["recorded"],
                    "candidate": c["candidate"],
                    "difference": c["candidate"] - c["recorded"],
                }
                for a, c in sorted(per_agent.items())
            ],
            "changed": changed_routes,
            "work_outside_new_team": {"tickets": outside_work["tickets"], "actions": outside_work["actions"]},
            "open_load": _open_load(spans, period, history.horizon),
        },
        "automation": {
            what: _kept(counts, agents=what != "auto_closes") for what, counts in automation.items()
        },
    }


def _automation_kept(
    source: Any,
    was: Replayed,
    now: Replayed,
    automation: dict[str, dict[Any, Counter[str]]],
    team_name: Callable[[UUID | None], str],
) -> None:
    """Count a ticket's follow-ups and fired reminders on each side: as recorded, but a follow-up that went to
    whoever held the ticket when it was solved goes, in the candidate, to whoever held it there."""

    def recipient(team: UUID | None, agent: str | None, side: Replayed) -> tuple[str, str]:
        if was.holder is not None and (team, agent) == was.holder and side.holder is not None:
            team, agent = side.holder
        return team_name(team), agent or "(unassigned)"

    for team, agent in source.follow_ups:
        for side, replayed in (("recorded", was), ("candidate", now)):
            automation["follow_ups"].setdefault(recipient(team, agent, replayed), Counter())[side] += 1
    for kind, team, agent in source.fired:
        for side, replayed in (("recorded", was), ("candidate", now)):
            who = (
                recipient(team, agent, replayed)
                if kind == "follow_up"
                else (team_name(team), agent or "(unassigned)")
            )
            automation["reminders_fired"].setdefault(who, Counter())[side] += 1


def _kept(counts: dict[Any, Counter[str]], agents: bool) -> dict[str, Any]:
    """One kind of the automation's kept actions: totals, per team and (where it has one) per agent."""
    per_team: dict[str, Counter[str]] = {}
    per_agent: dict[str, Counter[str]] = {}
    for key, sides in counts.items():
        team = key if isinstance(key, str) else key[0]
        per_team.setdefault(team, Counter()).update(sides)
        if not isinstance(key, str):
            per_agent.setdefault(key[1], Counter()).update(sides)
    out: dict[str, Any] = {
        "recorded": sum(c["recorded"] for c in per_team.values()),
        "candidate": sum(c["candidate"] for c in per_team.values()),
        "per_team": [
            {"team": t, "recorded": c["recorded"], "candidate": c["candidate"]}
            for t, c in sorted(per_team.items())
        ],
    }
    if agents:
        out["per_agent"] = [
            {"agent": a, "recorded": c["recorded"], "candidate": c["candidate"]}
            for a, c in sorted(per_agent.items())
        ]
    return out


#: Instants the open-ticket load is sampled at, over the period (or up to the log's last business time).
LOAD_SAMPLES = 48


def _open_load(
    spans: dict[str, dict[str, list[tuple[datetime, datetime | None]]]],
    period: Period,
    horizon: datetime | None,
) -> dict[str, Any]:
    """Open tickets per team (the team each was placed in) at evenly spaced instants, recorded and candidate."""
    end = period.until if horizon is None else max(period.since, min(period.until, horizon))
    count = LOAD_SAMPLES if end > period.since else 1
    step = (end - period.since) / max(count - 1, 1)
    instants = [period.since + step * n for n in range(count)]
    teams = []
    for team, sides in sorted(spans.items()):
        row: dict[str, Any] = {"team": team}
        for side in ("recorded", "candidate"):
            # A span counts at the instants from its start (inclusive) to its stop (exclusive): +1 / -1 there.
            steps = [0] * (count + 1)
            for start, stop in sides.get(side, []):
                if stop is not None and stop <= start:
                    continue  # open for no instant
                steps[bisect_left(instants, start)] += 1
                steps[count if stop is None else bisect_left(instants, stop)] -= 1
            row[side] = list(accumulate(steps[:count]))
        if any(row["recorded"]) or any(row["candidate"]):
            teams.append(row)
    return {"at": [at.isoformat() for at in instants], "teams": teams}


def _cell(counts: Counter[str] | None) -> dict[str, Any]:
    counts = counts or Counter()
    decided = counts["met"] + counts["breached"]
    return {
        "runs": decided,
        "met": counts["met"],
        "breached": counts["breached"],
        "attainment": None if decided == 0 else round(counts["met"] / decided, 4),
    }


def _totals(attainment: dict[tuple[str, str, str], dict[str, Counter[str]]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Counter[str]]] = {}
    for (_, _, metric), sides in attainment.items():
        for side, counts in sides.items():
            totals.setdefault(metric, {}).setdefault(side, Counter()).update(counts)
    return [
        {
            "metric": m,
            "recorded": _cell(totals[m].get("recorded")),
            "candidate": _cell(totals[m].get("candidate")),
        }
        for m in METRICS
        if m in totals
    ]


# ------------------------------------------------------------------ output
def to_json(report: dict[str, Any]) -> str:
    """The report as JSON: byte-identical for the same inputs."""
    return json.dumps(report, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


CSV_COLUMNS = (
    "team",
    "priority",
    "metric",
    "recorded_runs",
    "recorded_met",
    "recorded_breached",
    "recorded_attainment",
    "candidate_runs",
    "candidate_met",
    "candidate_breached",
    "candidate_attainment",
)


def to_csv(report: dict[str, Any]) -> str:
    """SLA attainment per team, priority and metric, recorded and candidate, one row each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report["sla"]:
        writer.writerow(
            [
                row["team"],
                row["priority"],
                row["metric"],
                *(
                    row[side][k]
                    for side in ("recorded", "candidate")
                    for k in ("runs", "met", "breached", "attainment")
                ),
            ]
        )
    return out.getvalue()
