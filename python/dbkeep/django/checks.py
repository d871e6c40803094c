"""System checks (``manage.py check``): every setting dbkeep reads, checked by dbkeep itself.

The configuration made from the settings is written to a private temporary file and read by
``dbkeep check``, which opens and writes nothing; an error on one of its lines is reported
against the Django setting that line came from.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

from django.conf import settings
from django.core import checks

from .. import executable
from . import conf

LINE = re.compile(r": line (\d+): ")


@checks.register()
def dbkeep_settings(app_configs=None, **kwargs):
    built = conf.build(settings)
    found = []
    for p in built.problems:
        kind = checks.Error if p.error else checks.Warning
        found.append(kind(f"{p.setting}: {p.message}", hint=p.hint, id=p.id))
    if any(p.error for p in built.problems):
        return found
    exe = executable()
    if exe is None:
        found.append(
            checks.Error(
                "the dbkeep executable that comes with the dbkeep package is missing",
                hint="reinstall it: pip install --force-reinstall dbkeep",
                id="dbkeep.E002",
            )
        )
        return found
    fd, path = tempfile.mkstemp(prefix="dbkeep-check-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(built.text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEP_")}
        env.update(built.env)
        done = subprocess.run(
            [exe, "--config", path, "check"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.unlink(path)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().removeprefix("error: ")
        message = message.replace(path, "the configuration made from the settings")
        setting = None
        line = LINE.search(message)
        if line:
            setting = built.setting_at(int(line.group(1)))
            message = message[line.end() :]
        found.append(
            checks.Error(
                f"{setting or 'DBKEEP'}: {message}",
                hint="dbkeep.toml's keys are described in dbkeep's README",
                id="dbkeep.E003",
            )
        )
    return found
