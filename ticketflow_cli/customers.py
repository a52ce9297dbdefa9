"""``ticketflow customer erase``: the right to erasure from the command line (an operator acting
for the compliance officer)."""

from __future__ import annotations

import sys
from typing import Annotated
from uuid import UUID

import typer

from projections.integrity.sealer import sealing_on_close
from ticketflow.application import TicketDesk
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import RuleViolation, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow_cli import output

customer_app = output.group(help="Customers' personal data.")


@customer_app.command("erase")
def erase(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    reference: Annotated[str, typer.Option(help="The compliance case number (no personal data).")],
    basis: Annotated[str, typer.Option(help="customer_request or retention.")] = "customer_request",
    operator: Annotated[str, typer.Option(help="Who runs this (recorded as the actor).")] = "compliance-cli",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Destroy the customer's key: their personal data reads [erased] everywhere; history stays complete."""
    settings: Settings = ctx.obj
    try:
        subject = UUID(customer_id)
    except ValueError:
        raise ValidationFailed(f"{customer_id!r} is not a customer id") from None
    desk = sealing_on_close(TicketDesk(settings))
    try:
        scope = desk.erasure_scope(subject)
        if scope.already_erased:
            raise RuleViolation(f"customer {subject} is already erased")
        output.console(stderr=True).print(
            f"erasing customer {subject} destroys their key for good: the profile fields"
            f" {', '.join(scope.profile_fields) or '(none set)'}, and the personal text of {scope.tickets} ticket(s)"
            f" and {scope.reminders} reminder(s), will read [erased] everywhere; history stays complete"
            f" (basis {basis}, reference {reference})", markup=False)
        if not yes:
            try:
                confirmed = typer.confirm("erase this customer's personal data?", default=False, err=True)
            except (typer.Abort, EOFError, OSError):  # no answer (no terminal, nothing on stdin)
                raise ValidationFailed("erasure needs confirmation: answer y, or add --yes") from None
            if not confirmed:
                print(f"not erased: customer {subject} keeps their data", file=sys.stderr)
                raise typer.Exit(1)
        result = desk.erase_customer(
            EraseCustomer(customer_id=subject, basis=basis, reference=reference),  # type: ignore[arg-type]
            Caller(operator, Role.COMPLIANCE, Channel.CLI),
        )
        completed = desk.history(subject)[-1]
        output.console().print(
            f"customer {subject} erased (version {result.version}): "
            f"{getattr(completed, 'tickets', 0)} ticket(s) now show personal fields as [erased]",
            markup=False,
        )
    finally:
        desk.close()
