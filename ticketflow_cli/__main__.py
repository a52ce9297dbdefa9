import sys

from ticketflow_cli import main

sys.exit(main())
