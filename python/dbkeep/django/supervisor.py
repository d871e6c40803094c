"""One supervised ``dbkeep serve`` per host, started with the web server.

Every web process (each gunicorn or uvicorn worker, runserver's serving process) runs a
watcher thread. The watchers of one host compete for an exclusive lock on
``BACKUP_DIR/.dbkeep/serve.lock``; the one holding it runs ``dbkeep serve`` and starts it
again when it dies (after a short, growing pause), the others only wait for the lock. When the
holder's process ends, the lock is released and another watcher takes over; the ``serve``
child is stopped with its watcher: on a normal exit by ``atexit``, and when the process is
killed, by the kernel (``PR_SET_PDEATHSIG``, which serve asks for when started with
``DBKEEP_STOP_WITH_PARENT``), so no ``serve`` outlives the server.

Several hosts each run their own ``serve``; with a shared catalog (``DBKEEP["catalog"] =
"postgres://…"``) their leases make each fire run once.

Nothing starts for other management commands (``migrate``, ``shell``, ``test``, …).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("dbkeep")

#: Seconds between a watcher's tries for the lock.
LOCK_POLL = 1.0
#: The pause before ``serve`` is started again grows to this many seconds.
MAX_PAUSE = 30.0
#: A ``serve`` that ran this long counts as healthy: its next restart pauses briefly again.
HEALTHY_AFTER = 60.0
#: How long ``serve`` gets to stop (finishing a running backup) before it is killed.
STOP_GRACE = 30.0

_SERVERS = {"gunicorn", "uvicorn", "daphne", "hypercorn", "uwsgi", "granian"}

_lock = threading.Lock()
_watcher: _Watcher | None = None


def is_web_server(argv: list[str] | None = None, environ: dict | None = None) -> bool:
    """Whether this process serves the site (and so runs a watcher).

    ``DBKEEP["autostart"]`` or the environment variable ``DBKEEP_AUTOSTART`` (``1``/``0``)
    decide when set; else: runserver's serving process (not its reloader), or a process
    started by one of the usual servers.
    """
    from django.conf import settings

    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    forced = environ.get("DBKEEP_AUTOSTART")
    if forced is not None and forced != "":
        return forced.strip().lower() not in ("0", "false", "no", "off")
    extra = getattr(settings, "DBKEEP", None) or {}
    if isinstance(extra, dict) and "autostart" in extra:
        return bool(extra["autostart"])
    program = os.path.basename(argv[0]) if argv else ""
    if argv[1:2] == ["runserver"]:
        # manage.py, django-admin or python -m django. With the autoreloader, the serving
        # process is the child it marks RUN_MAIN.
        return environ.get("RUN_MAIN") == "true" or "--noreload" in argv
    if program in ("manage.py", "django-admin", "__main__.py") or program.endswith("manage.py"):
        return False
    if program in _SERVERS or any(program.startswith(s) for s in _SERVERS):
        return True
    if "uwsgi" in sys.modules:
        return True
    return environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")


def autostart() -> None:
    """Starts this process's watcher when it is a web server (once)."""
    if is_web_server():
        start()


def start() -> None:
    """Starts this process's watcher (again after a fork: a child has its own)."""
    global _watcher
    with _lock:
        if _watcher is not None and _watcher.pid == os.getpid():
            return
        _watcher = _Watcher()
        _watcher.start()


def _after_fork() -> None:
    # A forked worker inherits the parent's lock file descriptor (which shares the lock) and
    # no threads: forget the parent's watcher and run one of its own.
    global _watcher
    old = _watcher
    if old is None:
        return
    old.forget_after_fork()
    _watcher = None
    start()


os.register_at_fork(after_in_child=_after_fork)


class _Watcher(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="dbkeep-watcher", daemon=True)
        self.pid = os.getpid()
        self._halt = threading.Event()
        self._child: subprocess.Popen | None = None
        self._lock_fd: int | None = None
        atexit.register(self.stop)

    def forget_after_fork(self) -> None:
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass
        self._lock_fd = None
        self._child = None
        self._halt.set()

    def stop(self) -> None:
        """Stops the watcher and its ``serve`` (gracefully, then by force)."""
        if os.getpid() != self.pid:
            return
        self._halt.set()
        child = self._child
        if child is not None and child.poll() is None:
            log.info("dbkeep: stopping dbkeep serve (pid %s)", child.pid)
            try:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            except OSError:
                pass

    def run(self) -> None:
        try:
            from .binary import prepared

            built = prepared()
        except Exception as e:  # noqa: BLE001 - a watcher never takes the server down
            log.error("dbkeep: not starting dbkeep serve: %s", e)
            return
        path = built.state_dir / "serve.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            log.error("dbkeep: cannot open %s: %s; not starting dbkeep serve", path, e)
            return
        self._lock_fd = fd
        while not self._halt.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._halt.wait(LOCK_POLL)
                continue
            except OSError as e:
                log.error("dbkeep: cannot lock %s: %s", path, e)
                self._halt.wait(MAX_PAUSE)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._supervise(built)
            return

    def _supervise(self, built) -> None:
        from .binary import popen

        pause = 1.0
        while not self._halt.is_set():
            started = time.monotonic()
            try:
                with _lock:
                    if self._halt.is_set():
                        return
                    # No Python code runs between fork and exec (a preexec_fn could deadlock
                    # on a lock another thread held): serve asks the kernel itself to be
                    # stopped with this process (DBKEEP_STOP_WITH_PARENT), and its own session
                    # keeps a Ctrl-C to the server from reaching it but through its watcher.
                    self._child = popen(
                        ["serve"],
                        built,
                        extra_env={"DBKEEP_STOP_WITH_PARENT": str(os.getpid())},
                        start_new_session=True,
                    )
            except Exception as e:  # noqa: BLE001
                log.error("dbkeep: cannot start dbkeep serve: %s", e)
            else:
                log.info("dbkeep: started dbkeep serve (pid %s)", self._child.pid)
                code = self._child.wait()
                if self._halt.is_set():
                    return
                log.warning("dbkeep: dbkeep serve exited with code %s; starting it again", code)
            if time.monotonic() - started > HEALTHY_AFTER:
                pause = 1.0
            self._halt.wait(pause)
            pause = min(pause * 2, MAX_PAUSE)
