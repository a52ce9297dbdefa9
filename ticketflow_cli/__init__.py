"""The ``ticketflow`` command line. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Annotated

import typer
from pydantic import ValidationError

from ticketflow.config import load_settings, unknown_variables
from ticketflow.errors import TicketflowError
from ticketflow_cli import accounts as accounts_cmd
from ticketflow_cli import audit as audit_cmd
from ticketflow_cli import backup as backup_cmd
from ticketflow_cli import customers as customers_cmd
from ticketflow_cli import demo as demo_cmd
from ticketflow_cli import export as export_cmd
from ticketflow_cli import history as history_cmd
from ticketflow_cli import importer as importer_cmd
from ticketflow_cli import mailboxes as mailboxes_cmd
from ticketflow_cli import policies as policies_cmd
from ticketflow_cli import reports as reports_cmd
from ticketflow_cli import serve as serve_cmd
from ticketflow_cli import teams as teams_cmd
from ticketflow_cli import views as views_cmd
from ticketflow_cli import webhooks as webhooks_cmd
from ticketflow_cli import whatif as whatif_cmd

app = typer.Typer(
    name="ticketflow",
    help="ticketflow: an event-sourced service desk that can prove its history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts print as written (see ticketflow_cli.output)
)
app.command("demo")(demo_cmd.demo)
app.command("history")(history_cmd.history)
app.command("views")(views_cmd.views)
app.command("rebuild")(views_cmd.rebuild)
app.command("project")(views_cmd.project)
app.command("serve")(serve_cmd.serve)
app.command("import")(importer_cmd.import_)
app.command("backup")(backup_cmd.backup)
app.command("restore")(backup_cmd.restore)
app.command("whatif")(whatif_cmd.whatif)
app.add_typer(serve_cmd.token_app, name="token")
app.add_typer(teams_cmd.team_app, name="team")
app.add_typer(accounts_cmd.account_app, name="account")
app.add_typer(customers_cmd.customer_app, name="customer")
app.add_typer(webhooks_cmd.webhook_app, name="webhook")
app.add_typer(mailboxes_cmd.mailbox_app, name="mailbox")
app.add_typer(policies_cmd.policy_app, name="policy")
app.add_typer(audit_cmd.audit_app, name="audit")
app.add_typer(reports_cmd.report_app, name="report")
app.add_typer(export_cmd.export_app, name="export")
app.add_typer(history_cmd.ticket_app, name="ticket")


def installed_version() -> str:
    """The installed distribution's version (what ``pip install`` put in place)."""
    try:
        return metadata.version("ticketflow")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: run from a source tree)"


def _show_version(shown: bool) -> None:
    if shown:
        print(f"ticketflow {installed_version()}")
        raise typer.Exit()


@app.callback()
def _settings(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option(
        "--version", help="Show the version and exit.", is_eager=True, callback=_show_version)] = False,
) -> None:
    """Settings come from TICKETFLOW_* environment variables (see README)."""
    for warning in unknown_variables():
        print(f"warning: {warning}", file=sys.stderr)
    ctx.obj = load_settings()


def one_line(exc: BaseException | str) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or exc.title
            parts.append(f"{where}: {error['msg']}")
        return "invalid input: " + "; ".join(parts)
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def os_error(exc: OSError) -> str:
    """``No such file or directory: /nonexistent/x.csv`` rather than ``[Errno 2] ...``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}: {exc.filename}" if exc.filename else reason


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode click answers typer.Exit by returning its exit code.
        returned = command.main(args=argv, prog_name="ticketflow", standalone_mode=False)
        if isinstance(returned, int) and not isinstance(returned, bool):
            return returned
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, bad value...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"error: {one_line(message)} (see: ticketflow --help)", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except (TicketflowError, ValidationError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file or device the command was pointed at: no space, no such directory...
        print(f"error: {one_line(os_error(exc))}", file=sys.stderr)
        return 1
    return 0



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
