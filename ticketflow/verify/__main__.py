"""``python -m ticketflow.verify DIR ...``: an alias of ``ticketflow-verify`` (the ``ticketflow-verify``
distribution, which ticketflow depends on; see ``ticketflow_verify.cli`` for options and exit codes)."""

import sys

from ticketflow_verify.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m ticketflow.verify"))
