import sys

from projections.doorbell import doorbell_fd, ignore_stopping_signals

if doorbell_fd() is not None:
    # `serve`'s view process (ticketflow_cli/view_process.py): from its first instant, not only once
    # `project` runs (a Ctrl-C at the terminal while it still imports reaches it too).
    ignore_stopping_signals()

from ticketflow_cli import main  # after the handlers: importing takes a second or more

sys.exit(main())
