"""dbkeep: automatic, verified database backups.

This package carries the ``dbkeep`` executable (the Rust binary, installed into the
environment's scripts folder, e.g. ``.venv/bin/dbkeep``) and lets Python find and run it:
``python -m dbkeep ARGS`` runs ``dbkeep ARGS``, and :func:`executable` gives its path.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from importlib import metadata

__all__ = ["__version__", "executable"]

_DIST = "dbkeep"
_EXE_NAME = "dbkeep.exe" if os.name == "nt" else "dbkeep"

try:
    # The wheel's version, which maturin takes from the crate's Cargo.toml.
    __version__: str = metadata.version(_DIST)
except metadata.PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "unknown"


def _candidates() -> list[str]:
    """Where the installed executable may be, most precise first."""
    found = []
    # 1. The file this installation recorded (RECORD): right for venvs, --user, --prefix.
    try:
        files = metadata.distribution(_DIST).files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == _EXE_NAME and file.parent.name in ("bin", "Scripts"):
            found.append(str(file.locate()))
    # 2. The scripts folder of this interpreter's install scheme (the venv's bin/), then the
    #    per-user one (pip install --user).
    if sys.version_info >= (3, 10):
        user_scheme = sysconfig.get_preferred_scheme("user")
    else:
        user_scheme = "nt_user" if os.name == "nt" else "posix_user"
    folders = [sysconfig.get_path("scripts")]
    try:
        folders.append(sysconfig.get_path("scripts", user_scheme))
    except KeyError:
        pass
    found.extend(os.path.join(folder, _EXE_NAME) for folder in folders if folder)
    unique = []
    for path in found:
        path = os.path.abspath(path)
        if path not in unique:
            unique.append(path)
    return unique


def executable() -> str | None:
    """The path of the ``dbkeep`` executable installed with this package, or None."""
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
