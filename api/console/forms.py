"""Helpers for the admin forms that create something shown once (a token, a webhook's secret).

Such a form carries a key made when the page was drawn; the command's id derives from it and the
signed-in person, like the API's ``Idempotency-Key``: sending the form again (a reload of the answer
page, a double click) is recognised as the same command, never a second token or webhook."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from api.console.page import Page
from ticketflow.domain.values import Channel
from ticketflow.metadata import Caller

FORM_KEY = "form_key"
_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/console-form-keys")


def new_form_key() -> str:
    return uuid4().hex


def form_command_id(page: Page, form: Any) -> UUID:
    """The command id of this form's submission: the same for every resend of one drawn form."""
    assert page.principal is not None
    try:
        key = UUID(hex=str(form.get(FORM_KEY) or ""))
    except ValueError:
        return uuid4()
    return uuid5(_NAMESPACE, f"{page.principal.token_id}:{key.hex}")


def caller(page: Page) -> Caller:
    """The signed-in person as the application's caller, via the console."""
    assert page.principal is not None
    return page.principal.caller(Channel.CONSOLE, getattr(page.request.state, "request_id", None))
