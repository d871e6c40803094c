"""``python -m dbkeep ARGS``: runs the installed ``dbkeep`` executable with ARGS.

Same arguments, standard streams, signals and exit code as running ``dbkeep ARGS`` (on POSIX
the Python process is replaced by it). Exits 2 with a message when the executable is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys

from dbkeep import _candidates, executable


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    exe = executable()
    if exe is None:
        looked = ", ".join(_candidates()) or "nowhere: no install scheme has a scripts folder"
        print(
            "dbkeep: the dbkeep executable that comes with this Python package is missing "
            f"(looked for it at {looked}); reinstall the package, e.g. "
            "pip install --force-reinstall dbkeep",
            file=sys.stderr,
        )
        return 2
    if os.name == "posix":
        try:
            os.execv(exe, [exe, *args])  # does not return
        except OSError as e:
            print(f"dbkeep: cannot run {exe}: {e}", file=sys.stderr)
            return 2
    try:
        return subprocess.call([exe, *args])
    except OSError as e:
        print(f"dbkeep: cannot run {exe}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
