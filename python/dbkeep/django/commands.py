"""What the management commands share: running ``dbkeep`` with this project's configuration,
its output and exit code passed through."""

from __future__ import annotations

import subprocess
import sys

from django.core.management.base import BaseCommand, CommandError

from . import binary


class DbkeepCommand(BaseCommand):
    """A management command that runs one ``dbkeep`` subcommand."""

    # dbkeep checks its configuration itself, and names the setting at fault.
    requires_system_checks: list = []

    def dbkeep(self, args: list[str]) -> None:
        """Runs ``dbkeep ARGS`` with the command's streams; exits with its code when non-zero."""
        try:
            # dbkeep's audit log names the acts of management commands as Django's.
            argv, env = binary.command(args, extra_env={"DBKEEP_AUDIT_ACTOR": "django:manage.py"})
        except (RuntimeError, binary.DbkeepMissing) as e:
            raise CommandError(str(e), returncode=2) from e
        streams = [self.stdout._out, self.stderr._out]
        for s in streams:
            s.flush()
        try:
            if all(_has_fileno(s) for s in streams):
                code = subprocess.call(argv, env=env, stdout=streams[0], stderr=streams[1])
            else:  # call_command(..., stdout=StringIO())
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                streams[0].write(done.stdout)
                streams[1].write(done.stderr)
                code = done.returncode
        except KeyboardInterrupt:
            code = 130
        if code != 0:
            sys.exit(code)


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True
