"""A first look at the email channel's inbound cost (the issue's full figures are for part 2).

    PYTHONPATH=$PWD python bench/bench_email.py [--parse 4000] [--mails 300]

Parsing alone: ``parse_message`` over four corpus shapes (a QQ Mail reply, a GB2312-labelled GBK
mail, an HTML-only Gmail reply, a Big5 mail). Intake: ``receive_mail`` of distinct mails from 50
senders into a fresh SQLite desk (registering each sender once, opening a ticket per mail, sealing
and keeping each raw message). Prints messages per second for each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.email import corpus
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.email.parse import parse_message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parse", type=int, default=4000)
    parser.add_argument("--mails", type=int, default=300)
    args = parser.parse_args()
    shapes = [
        corpus.plain(corpus.QQ_REPLY),
        corpus.gbk_labelled_gb2312(),
        corpus.html_only_gmail_reply(),
        corpus.big5_mail(),
    ]
    started = time.perf_counter()
    for i in range(args.parse):
        parse_message(shapes[i % len(shapes)])
    print(f"parse alone: {args.parse / (time.perf_counter() - started):.0f} messages/s")
    mails = [
        corpus.plain(f"第{i}封", sender=f"user{i % 50}@example.cn", message_id=f"<bench.{i}@example.cn>")
        for i in range(args.mails)
    ]
    with tempfile.TemporaryDirectory() as directory:
        desk = TicketDesk(Settings(data_dir=Path(directory), seal=False))
        try:
            started = time.perf_counter()
            for raw in mails:
                desk.receive_mail(raw, mailbox="support")
            print(
                f"intake into tickets (SQLite): {args.mails / (time.perf_counter() - started):.0f} messages/s"
            )
        finally:
            desk.close()


if __name__ == "__main__":
    main()
