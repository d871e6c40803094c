"""Running the ``dbkeep`` executable for this project: its configuration written from the
settings, the databases' passwords in its environment (never on its command line)."""

from __future__ import annotations

import os
import subprocess
from typing import Any, Sequence

from django.conf import settings

from .. import executable
from . import conf

__all__ = ["DbkeepMissing", "prepared", "command", "run", "popen"]


class DbkeepMissing(RuntimeError):
    """The executable that comes with the package is not installed."""


def prepared() -> conf.Built:
    """This project's configuration, written to its file."""
    built = conf.build(settings)
    errors = [p for p in built.problems if p.error]
    if errors:
        raise RuntimeError(
            "dbkeep's settings are not usable: "
            + "; ".join(f"{p.setting}: {p.message}" for p in errors)
            + " (run `python manage.py check`)"
        )
    conf.write(built)
    return built


def _exe() -> str:
    exe = executable()
    if exe is None:
        raise DbkeepMissing(
            "the dbkeep executable that comes with the dbkeep package is missing; reinstall it "
            "with pip install --force-reinstall dbkeep"
        )
    return exe


def command(
    args: Sequence[str], built: conf.Built | None = None, extra_env: dict | None = None
) -> tuple[list[str], dict]:
    """The command line and environment that run ``dbkeep ARGS`` for this project."""
    built = built or prepared()
    env = dict(os.environ)
    env.update(built.env)
    env.update(extra_env or {})
    # What the settings say wins over variables left in the server's environment.
    for var in ("DBKEEP_CONFIG", "DBKEEP_BACKUP_DIR", "DBKEEP_RETENTION_DAYS", "DBKEEP_LISTEN"):
        env.pop(var, None)
    return [_exe(), "--config", str(built.config_path), *args], env


def run(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """Runs ``dbkeep ARGS`` to completion (``subprocess.run`` keywords pass through)."""
    argv, env = command(args)
    return subprocess.run(argv, env=env, check=False, **kwargs)


def popen(
    args: Sequence[str],
    built: conf.Built | None = None,
    extra_env: dict | None = None,
    **kwargs: Any,
) -> subprocess.Popen:
    """Starts ``dbkeep ARGS`` (``extra_env`` added to its environment)."""
    argv, env = command(args, built, extra_env)
    return subprocess.Popen(argv, env=env, **kwargs)
