"""``serve``'s view process on SQLite: the views, the automation and the sealer beside the API process.

One Python process runs one thread's Python at a time. With the views, the automation and the
sealer in threads of the API process, a desk under load spent its one core on them too (about a
fifth of its CPU per command) while the second core idled. ``serve`` on SQLite therefore runs them
in a child process, ``ticketflow project``, as a PostgreSQL desk runs them beside its API workers;
the API process rings it after every save and when a reader waits for its own write
(:mod:`projections.doorbell`), so reads see writes as soon as before. Measured with
``python bench/bench_http.py --store sqlite --sqlite-standalone --clients 32`` (the same two
processes): 776 -> 1,003 commands/s, p99 83 -> 63 ms, server CPU 1.19 -> 1.03 ms/command (load ~2).

The child is ``serve``'s: started with it, in its process group, stopped by the end of the doorbell's
pipe only (``serve`` closes it after its API stopped, or exits: a Ctrl-C at the terminal or a SIGTERM
to the whole group, as systemd sends, stops the API first, then the child: the sealer's last
checkpoint covers the last command), restarted if it dies (an error is logged; its views resume
from their positions); a SIGKILL to the group kills both, as it killed the views' threads, and
``serve`` killed alone (``kill -9 PID``) leaves the pipe's end to stop the child (which ignores the
stopping signals from its first instant: ``ticketflow_cli/__main__.py``). ``TICKETFLOW_VIEWS_PROCESS=0``
keeps them in threads of the API process.

``serve --workers N`` on SQLite runs one view process for its N API processes; its doorbell is then a
named pipe each worker opens (``named=True``), which ends once ``serve`` and all its workers closed it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from projections.doorbell import FD_VARIABLE, PATH_VARIABLE, Doorbell

log = logging.getLogger("ticketflow.serve")

#: The first wait before a view process that died is started again; doubled after each quick death.
RESTART_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0
#: A process that ran this long before dying is restarted after the first wait again.
STEADY_SECONDS = 60.0
#: How long a stopping view process may take (its sealer's last checkpoint) before it is killed.
STOP_SECONDS = 30.0


class ViewProcess:
    """``ticketflow project`` as a child of this process, supervised, with a doorbell to it."""

    def __init__(self, command: list[str] | None = None, *, named: bool = False) -> None:
        """``named``: the doorbell is a named pipe (:attr:`path`) that other processes can open and ring
        too (``serve --workers N``'s workers); otherwise an anonymous pipe only this process rings."""
        self.command = command or [sys.executable, "-m", "ticketflow_cli", "project", "--status-every", "0"]
        self._directory: str | None = None
        self.path: str | None = None
        if named:
            self._directory = tempfile.mkdtemp(prefix="ticketflow-doorbell-")
            self.path = os.path.join(self._directory, "doorbell")
            os.mkfifo(self.path, 0o600)
            # The reading end first (a FIFO opened without O_NONBLOCK waits for the other end), then
            # this process's writing end, so the view process never reads an end before any ring.
            self._read = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(self._read, True)
            self._write = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        else:
            self._read, self._write = os.pipe()
        self.doorbell = Doorbell(self._write)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher = threading.Thread(target=self._supervise, name="view-process", daemon=True)
        self.starts = 0

    def start(self) -> None:
        with self._lock:
            self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        env = {**os.environ, FD_VARIABLE: str(self._read)}
        env.pop(PATH_VARIABLE, None)  # (set for serve's workers: the view process listens, it does not ring)
        self._process = subprocess.Popen(
            self.command, env=env, pass_fds=(self._read,), stdin=subprocess.DEVNULL)
        self.starts += 1

    def _supervise(self) -> None:
        wait = RESTART_SECONDS
        while True:
            with self._lock:
                process = self._process
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            wait = RESTART_SECONDS if time.monotonic() - started >= STEADY_SECONDS else wait
            log.error("the view process (views, automation, sealer) exited with status %s; starting it again in %g s",
                      code, wait, extra={"exit_status": code})
            if not self._restart(wait):
                return
            wait = min(wait * 2, RESTART_MAX_SECONDS)

    def _restart(self, wait: float) -> bool:
        """Start the view process again after ``wait`` (doubled after each failed start), until it
        started (True) or serve is stopping (False). A start that fails (``fork`` refused: no memory,
        too many processes; the interpreter gone) is logged and tried again: an error escaping here
        would end this thread, and with it the supervision, the views then never moving again while
        the API answers (each read with ``min_position`` waiting its whole time out)."""
        while not self._stopping.wait(wait):
            with self._lock:
                if self._stopping.is_set():
                    return False
                try:
                    self._spawn()
                except OSError:
                    log.exception("the view process could not be started; trying again in %g s",
                                  min(wait * 2, RESTART_MAX_SECONDS))
                else:
                    return True
            wait = min(wait * 2, RESTART_MAX_SECONDS)
        return False

    def stop(self) -> None:
        """Stop the view process: close the doorbell (the pipe's end stops it: it finishes its batch and
        seals up to the end of the log; it takes no signal that stops serve), killing it if it has not
        stopped in STOP_SECONDS."""
        with self._lock:
            self._stopping.set()
            process = self._process
        self.doorbell.close()
        if process is not None and process.poll() is None:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.error("the view process did not stop in %g s; killed", STOP_SECONDS)
                process.kill()
                process.wait()
        if self._watcher.is_alive():
            self._watcher.join(timeout=5)
        try:
            os.close(self._read)
        except OSError:
            pass
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
