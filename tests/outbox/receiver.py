"""A real webhook receiver on loopback: checks each signature, records each delivery, can fail or go down."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from projections.webhook_sender import verify
from ticketflow.clock import Clock


@dataclass(frozen=True)
class Received:
    delivery_id: str
    event_type: str
    attempt: int
    signature_ok: bool
    body: dict[str, Any]
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Answers 200 to well-signed posts (or ``status`` while set); ``stop`` refuses connections."""

    def __init__(self, secret_of: Callable[[str], str], clock: Clock) -> None:
        self.secret_of, self.clock = secret_of, clock
        self.received: list[Received] = []
        self.status = 200
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                ok = verify(
                    receiver.secret_of(body["webhook_id"]), self.headers["X-Ticketflow-Signature"], raw,
                    receiver.clock.now().timestamp(),
                )
                receiver.received.append(Received(
                    self.headers["X-Ticketflow-Delivery"], self.headers["X-Ticketflow-Event"],
                    int(self.headers["X-Ticketflow-Attempt"]), ok, body, raw, dict(self.headers.items()),
                ))
                self.send_response(receiver.status if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: nothing listens on the port any more (connection refused)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def unique(self) -> dict[str, Received]:
        """What a receiver keeps after dropping duplicates by delivery id."""
        kept: dict[str, Received] = {}
        for item in self.received:
            kept.setdefault(item.delivery_id, item)
        return kept
