"""``ticketflow whatif``: replay a past period under candidate policies, side by side with what happened."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.whatif import Period, run_whatif, to_csv, to_json
from ticketflow_cli import output
from ticketflow_cli.reports import parse_time


def whatif(
    ctx: typer.Context,
    candidate: Annotated[
        Path,
        typer.Argument(
            help="Candidate policies (TOML or JSON): routing, calendars, sla_policies, assignment, rotation.",
            metavar="CANDIDATE",
        ),
    ],
    since: Annotated[
        str,
        typer.Option(
            "--from",
            help="Tickets opened from this business time on (ISO 8601; "
            "without an offset, in the desk's time zone).",
        ),
    ],
    until: Annotated[str, typer.Option("--to", help="...and before this one.")],
    team: Annotated[
        str | None,
        typer.Option("--team", help="Only tickets placed in this team (name or id), recorded or candidate."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Look at the SLA clocks last at this instant (default: the latest ticket event in the log).",
        ),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the comparison as JSON (byte-identical for the same inputs)."),
    ] = False,
    csv_file: Annotated[
        str | None,
        typer.Option(
            "--csv",
            help="Write SLA attainment per team, priority and "
            "metric as CSV to this file ('-': standard output).",
            metavar="FILE|-",
        ),
    ] = None,
) -> None:
    """What if a past period had run under other routing rules, SLA policies, calendars, assignment
    strategies or members in or out of rotation?"""
    settings: Settings = ctx.obj
    zone = settings.time_zone
    start, end = parse_time(since, "--from", zone), parse_time(until, "--to", zone)
    assert start is not None and end is not None
    last = parse_time(as_of, "--as-of", zone)
    desk = TicketDesk(settings)
    try:
        with output.console(stderr=True).status("replaying the period..."):
            report = run_whatif(desk, Period(start, end), candidate, team=team, as_of=last)
    finally:
        desk.close()
    if csv_file is not None:
        text = to_csv(report)
        if csv_file == "-":
            sys.stdout.write(text)
        else:
            Path(csv_file).write_text(text, encoding="utf-8")
    if json_out:
        sys.stdout.write(to_json(report))
    elif csv_file != "-":
        _tables(report)


def _pct(cell: dict[str, Any]) -> str:
    if cell["attainment"] is None:
        return "-"
    return f"{cell['met']}/{cell['runs']} ({cell['attainment']:.1%})"


def _tables(report: dict[str, Any]) -> None:
    console = output.console(min_width=120)
    tickets, fidelity = report["tickets"], report["fidelity"]
    console.print(
        f"what-if {report['period']['from']} .. {report['period']['to']}: {tickets['replayed']} tickets "
        f"({tickets['live']} live, {tickets['imported']} imported); SLA clocks looked at last {report['as_of']}"
    )
    console.print(
        f"fidelity: the recorded replay gives back the automation's decisions for {fidelity['same_decisions']} "
        f"of {fidelity['live_tickets']} live tickets ({fidelity['same_decisions_and_instants']} at the same instants)"
    )
    totals = Table(title="SLA attainment (met / decided), all teams")
    for column in ("metric", "recorded", "candidate", "change"):
        totals.add_column(column, justify="left" if column == "metric" else "right")
    for row in report["sla_totals"]:
        was, now = row["recorded"], row["candidate"]
        change = (
            "-"
            if was["attainment"] is None or now["attainment"] is None
            else (
                f"{(now['attainment'] - was['attainment']) * 100:+.1f} pts, {now['breached'] - was['breached']:+d} breaches"
            )
        )
        totals.add_row(row["metric"], _pct(was), _pct(now), change)
    console.print(totals)
    detail = Table(title="SLA attainment per team, priority and metric")
    for column in ("team", "priority", "metric", "recorded", "candidate"):
        detail.add_column(column, justify="right" if column in ("recorded", "candidate") else "left")
    for row in report["sla"]:
        detail.add_row(
            row["team"], row["priority"], row["metric"], _pct(row["recorded"]), _pct(row["candidate"])
        )
    console.print(detail)
    routing = Table(title="tickets per team")
    for column in ("team", "recorded", "candidate"):
        routing.add_column(column, justify="left" if column == "team" else "right")
    for row in report["routing"]["per_team"]:
        routing.add_row(row["team"], str(row["recorded"]), str(row["candidate"]))
    console.print(routing)
    agents = [row for row in report["routing"]["per_agent"] if row["difference"]]
    if agents:
        per_agent = Table(title="tickets per agent (agents whose share changes)")
        for column in ("agent", "recorded", "candidate", "change"):
            per_agent.add_column(column, justify="left" if column == "agent" else "right")
        for row in agents:
            per_agent.add_row(row["agent"], str(row["recorded"]), str(row["candidate"]), f"{row['difference']:+d}")
        console.print(per_agent)
    _breach_changes(console, report)
    _changed_routes(console, report["routing"]["changed"])
    _open_load(console, report["routing"]["open_load"])
    _automation(console, report["automation"])
    outside = report["routing"]["work_outside_new_team"]
    escalations = report["escalations"]
    console.print(
        f"newly breaching: {len(report['newly_breaching'])} runs; no longer breaching: "
        f"{len(report['no_longer_breaching'])}; escalations {escalations['recorded']} -> {escalations['candidate']}; "
        f"re-routed tickets: {sum(1 for c in report['routing']['changed'] if c['recorded']['team'] != c['candidate']['team'])}"
        f" ({outside['tickets']} with recorded work by {outside['actions']} actions of people outside the new team)"
    )
    console.print("semantics: " + " ".join(report["semantics"]))


AUTOMATION_KINDS = (
    ("auto_closes", "auto-closes"),
    ("follow_ups", "follow-ups scheduled"),
    ("reminders_fired", "reminders fired"),
)


def _automation(console: Any, kept: dict[str, Any]) -> None:
    """Auto-closes, follow-ups and reminders fired per team (and per agent where that changes)."""
    table = Table(
        title="auto-closes, follow-ups and reminders (same timing on both sides; whose they are can change)"
    )
    for column in ("what", "team", "recorded", "candidate"):
        table.add_column(column, justify="right" if column in ("recorded", "candidate") else "left")
    for key, label in AUTOMATION_KINDS:
        table.add_row(label, "(all)", str(kept[key]["recorded"]), str(kept[key]["candidate"]))
        for row in kept[key]["per_team"]:
            table.add_row("", row["team"], str(row["recorded"]), str(row["candidate"]))
    console.print(table)
    changed = [
        (label, row)
        for key, label in AUTOMATION_KINDS
        for row in kept[key].get("per_agent", [])
        if row["recorded"] != row["candidate"]
    ]
    if changed:
        agents = Table(title="follow-ups and reminders per agent (agents whose share changes)")
        for column in ("what", "agent", "recorded", "candidate"):
            agents.add_column(column, justify="right" if column in ("recorded", "candidate") else "left")
        for label, row in changed:
            agents.add_row(label, row["agent"], str(row["recorded"]), str(row["candidate"]))
        console.print(agents)


#: Rows of each ticket list the table shows (all of them are in ``--json``).
LIST_ROWS = 100


def _more(console: Any, rows: int) -> None:
    if rows > LIST_ROWS:
        console.print(f"... and {rows - LIST_ROWS} more (all of them with --json)")


def _breach_changes(console: Any, report: dict[str, Any]) -> None:
    """The SLA clock runs that newly breach or no longer breach, with their tickets."""
    rows = [("newly breaching", e) for e in report["newly_breaching"]] + [
        ("no longer breaching", e) for e in report["no_longer_breaching"]
    ]
    if not rows:
        return
    table = Table(title="SLA clock runs whose outcome changes")
    for column in ("ticket", "metric", "clock started", "under the candidate"):
        table.add_column(column)
    for change, entry in rows[:LIST_ROWS]:
        table.add_row(entry["ticket"], entry["metric"], entry["cycle"], change)
    console.print(table)
    _more(console, len(rows))


def _changed_routes(console: Any, changed: list[dict[str, Any]]) -> None:
    """Each ticket placed differently: team, agent and the rule that matched, recorded and candidate."""
    if not changed:
        return
    table = Table(title="tickets placed differently (team, agent, the rule that would have matched)")
    for column in ("ticket", "recorded", "candidate"):
        table.add_column(column)

    def place(side: dict[str, Any]) -> str:
        rule = f"rule {side['rule']}" if side["rule"] else "no rule matched"
        return f"{side['team']} / {side['agent'] or '(no agent)'} / {rule}"

    for entry in changed[:LIST_ROWS]:
        table.add_row(entry["ticket"], place(entry["recorded"]), place(entry["candidate"]))
    console.print(table)
    _more(console, len(changed))


SPARKS = " ▁▂▃▄▅▆▇█"


def _spark(values: list[int], top: int) -> str:
    return "".join(SPARKS[0 if v <= 0 else max(1, round(v / top * (len(SPARKS) - 1)))] for v in values)


def _open_load(console: Any, load: dict[str, Any]) -> None:
    """Open tickets per team over the period, recorded and candidate: the peak and a line of bars."""
    if not load["teams"] or not load["at"]:
        return
    top = max([1, *(v for row in load["teams"] for side in ("recorded", "candidate") for v in row[side])])
    table = Table(title=f"open tickets over time ({len(load['at'])} instants, {load['at'][0]} .. {load['at'][-1]})")
    for column in ("team", "side", "peak", "over time"):
        table.add_column(column, justify="right" if column == "peak" else "left", no_wrap=column == "over time")
    for row in load["teams"]:
        for side in ("recorded", "candidate"):
            table.add_row(row["team"] if side == "recorded" else "", side, str(max(row[side])), _spark(row[side], top))
    console.print(table)
