import signal
import sys

from projections.doorbell import doorbell_fd

if doorbell_fd() is not None:
    # `serve`'s view process (ticketflow_cli/view_process.py): only the end of its doorbell's pipe stops it,
    # from its first instant (a Ctrl-C at the terminal while it still imports reaches it too; `project`
    # installs the same handlers once it runs). A handler that does nothing, not SIG_IGN, which a process
    # this one starts would inherit.
    for _signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(_signal, lambda *_: None)

from ticketflow_cli import main  # after the handlers: importing takes a second or more

sys.exit(main())
