"""Loaded by every Python process the crash trials start (bench/faults.py puts this directory on
PYTHONPATH): SIGUSR1 makes the process write every thread's stack to its stderr, which the harness
keeps in the process's log. A trial that fails a check signals each process before stopping it, so
the kept logs show where a stuck worker was waiting. Nothing else changes in the processes."""

import faulthandler
import signal

faulthandler.register(signal.SIGUSR1, all_threads=True)
