"""``python -m ticketflow_verify DIR ...`` (the same as ``ticketflow-verify``)."""

import sys

from ticketflow_verify.cli import main

sys.exit(main(prog="python -m ticketflow_verify"))
