"""dbkeep's configuration, made from the Django settings.

* Every entry of ``DATABASES`` whose engine is SQLite, PostgreSQL or MySQL/MariaDB becomes a
  database named after its alias (``NAME``, ``HOST``, ``PORT``, ``USER``, ``PASSWORD``,
  ``OPTIONS``). Passwords never enter the file: each reaches dbkeep through an environment
  variable named by ``password_env``.
* ``BACKUP_DIR`` and ``BACKUP_RETENTION_DAYS`` are ``backup_dir`` and ``retention_days``.
* ``TIME_ZONE`` is the zone schedules are read in.
* ``DBKEEP = {...}`` holds everything else, with the keys of ``dbkeep.toml``; its
  ``"databases"`` maps an alias to more keys of that database (``schedules``,
  ``compression``, ``keep_last``, …), or to ``False`` to leave the alias out.

The file is written to ``BACKUP_DIR/.dbkeep/dbkeep.toml`` (mode 0600, folder 0700), beside the
catalog unless ``DBKEEP["catalog"]`` puts it elsewhere.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from . import _toml

__all__ = ["Built", "Problem", "build", "write"]

SQLITE = {
    "django.db.backends.sqlite3",
    "django.contrib.gis.db.backends.spatialite",
}
POSTGRES = {
    "django.db.backends.postgresql",
    "django.db.backends.postgresql_psycopg2",
    "django.contrib.gis.db.backends.postgis",
}
MYSQL = {
    "django.db.backends.mysql",
    "django.contrib.gis.db.backends.mysql",
}

#: libpq connection parameters an ``OPTIONS`` entry may carry to pg_dump and psql.
LIBPQ_OPTIONS = {
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
    "connect_timeout", "application_name", "options", "target_session_attrs", "gssencmode",
    "channel_binding", "passfile", "service", "keepalives", "keepalives_idle",
    "requiressl", "krbsrvname", "gsslib",
}  # fmt: skip

#: MySQL ``OPTIONS`` that are options of mariadb-dump and mariadb too.
MYSQL_OPTIONS = {"unix_socket": "socket", "ssl_mode": "ssl-mode"}

#: The keys of ``DBKEEP`` this module writes itself, from other settings.
DERIVED = {"backup_dir": "BACKUP_DIR", "retention_days": "BACKUP_RETENTION_DAYS"}

NAME_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Problem:
    """A setting dbkeep cannot use (``error``) or that it ignores (a warning)."""

    setting: str
    message: str
    hint: str | None = None
    error: bool = True
    id: str = "dbkeep.E001"


@dataclass
class Built:
    """dbkeep's configuration for this project, and what it took to make it."""

    text: str
    #: Environment for the dbkeep process: the databases' passwords.
    env: dict[str, str]
    backup_dir: Path
    state_dir: Path
    config_path: Path
    databases: list[str]
    problems: list[Problem] = field(default_factory=list)
    writer: _toml.Writer | None = None

    def setting_at(self, line: int) -> str | None:
        """The Django setting behind line ``line`` of the file."""
        return self.writer.setting_at(line) if self.writer else None


def _password_env(alias: str) -> str:
    return "DBKEEP_DJANGO_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", alias).upper()


def _database_url(alias: str, db: dict, problems: list[Problem]) -> tuple[str | None, str]:
    """The dbkeep ``url`` of one ``DATABASES`` entry, and the engine's kind."""
    engine = str(db.get("ENGINE", ""))
    setting = f"DATABASES[{alias!r}]"
    options = db.get("OPTIONS") or {}
    if engine in SQLITE:
        name = str(db.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            problems.append(
                Problem(
                    f"{setting}['NAME']",
                    "an in-memory SQLite database cannot be backed up; it is left out",
                    error=False,
                    id="dbkeep.W001",
                )
            )
            return None, "sqlite"
        if name.startswith("file:"):
            problems.append(
                Problem(
                    f"{setting}['NAME']",
                    "a SQLite URI filename is not supported; give the file's path",
                )
            )
            return None, "sqlite"
        return "sqlite:" + os.path.abspath(name), "sqlite"
    if engine in POSTGRES or engine in MYSQL:
        kind = "postgres" if engine in POSTGRES else "mysql"
        host = str(db.get("HOST") or "")
        port = str(db.get("PORT") or "")
        user = str(db.get("USER") or "")
        name = str(db.get("NAME") or "")
        if not name:
            problems.append(Problem(f"{setting}['NAME']", "no database name is set"))
            return None, kind
        query: dict[str, str] = {}
        if kind == "postgres":
            for key, v in options.items():
                if key in LIBPQ_OPTIONS and isinstance(v, (str, int)):
                    query[key] = str(v)
            if host.startswith("/"):
                query["host"] = host
                host = "localhost"
        else:
            for key, v in options.items():
                tool = MYSQL_OPTIONS.get(key)
                if tool and isinstance(v, str):
                    query[tool] = v
            if host.startswith("/"):
                query["socket"] = host
                host = "localhost"
        host = host or "localhost"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        netloc = (quote(user, safe="") + "@" if user else "") + host + (f":{port}" if port else "")
        url = f"{kind}://{netloc}/{quote(name, safe='')}"
        if query:
            url += "?" + urlencode(query, safe="/")
        return url, kind
    problems.append(
        Problem(
            f"{setting}['ENGINE']",
            f"dbkeep cannot back up databases of the engine {engine!r}",
            hint=(
                "dbkeep backs up SQLite, PostgreSQL and MySQL/MariaDB; leave this alias out "
                f"with DBKEEP = {{'databases': {{{alias!r}: False}}}}"
            ),
        )
    )
    return None, "unknown"


def build(settings: Any) -> Built:
    """dbkeep's configuration from ``settings`` (``django.conf.settings``)."""
    problems: list[Problem] = []
    extra: dict = getattr(settings, "DBKEEP", None) or {}
    if not isinstance(extra, dict):
        problems.append(Problem("DBKEEP", "must be a dict of dbkeep.toml's keys"))
        extra = {}
    per_db = extra.get("databases") or {}
    if not isinstance(per_db, dict):
        problems.append(
            Problem(
                "DBKEEP['databases']",
                "must map a DATABASES alias to that database's dbkeep keys (or False)",
            )
        )
        per_db = {}
    for key, setting in DERIVED.items():
        if key in extra:
            problems.append(
                Problem(
                    f"DBKEEP[{key!r}]",
                    f"is set by {setting}; set {setting} instead",
                )
            )

    raw_dir = getattr(settings, "BACKUP_DIR", None)
    if raw_dir in (None, ""):
        base = getattr(settings, "BASE_DIR", None)
        if base is None:
            problems.append(
                Problem(
                    "BACKUP_DIR",
                    "is not set (and there is no BASE_DIR to put backups/ under)",
                    hint="set BACKUP_DIR = BASE_DIR / 'backups' in settings.py",
                )
            )
            raw_dir = os.path.join(tempfile.gettempdir(), "dbkeep-unset")
        else:
            raw_dir = os.path.join(str(base), "backups")
    backup_dir = Path(os.path.abspath(str(raw_dir)))
    if not backup_dir.parent.is_dir():
        problems.append(
            Problem(
                "BACKUP_DIR",
                f"its parent folder {backup_dir.parent} does not exist",
                hint="create it, or point BACKUP_DIR at a folder whose parent exists",
            )
        )
    retention = getattr(settings, "BACKUP_RETENTION_DAYS", None)
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or retention < 0
    ):
        problems.append(
            Problem(
                "BACKUP_RETENTION_DAYS",
                f"must be a whole number of days, 0 or more (it is {retention!r})",
            )
        )
        retention = None
    state_dir = backup_dir / ".dbkeep"

    w = _toml.Writer()
    w.comment("Written by dbkeep.django from the project's settings on each start: edit")
    w.comment("settings.py (DATABASES, BACKUP_DIR, BACKUP_RETENTION_DAYS, DBKEEP), not this file.")
    w.pair("backup_dir", str(backup_dir), "BACKUP_DIR")
    if retention is not None:
        w.pair("retention_days", retention, "BACKUP_RETENTION_DAYS")
    top = {k: v for k, v in extra.items() if k != "databases" and k not in DERIVED}
    top.setdefault("catalog", str(state_dir / "catalog.sqlite3"))
    # dbkeep's own web admin is not needed beside Django's: on a free loopback port.
    top.setdefault("listen", "127.0.0.1:0")
    tz = getattr(settings, "TIME_ZONE", None)
    if tz and "timezone" not in top:
        top["timezone"] = tz
    tables = {}
    for key, v in top.items():
        where = f"DBKEEP[{key!r}]"
        if key in ("catalog", "listen") and key not in extra:
            where = "DBKEEP"
        if key == "timezone" and "timezone" not in extra:
            where = "TIME_ZONE"
        if _toml.is_table(v) or _toml.is_table_array(v):
            tables[key] = v
            continue
        try:
            w.pair(str(key), v, where)
        except TypeError as e:
            problems.append(Problem(where, str(e)))

    env: dict[str, str] = {}
    names: list[str] = []
    databases = getattr(settings, "DATABASES", {}) or {}
    for alias in per_db:
        if alias not in databases:
            problems.append(
                Problem(
                    f"DBKEEP['databases'][{alias!r}]",
                    f"names no entry of DATABASES (there are: {', '.join(databases) or 'none'})",
                )
            )
    for alias, db in databases.items():
        more = per_db.get(alias, {})
        if more is False:
            continue
        setting = f"DATABASES[{alias!r}]"
        if not NAME_RULE.match(str(alias)):
            problems.append(
                Problem(
                    setting,
                    "dbkeep names a database after its alias, which may hold only letters, "
                    "digits, - and _",
                    hint=f"leave it out with DBKEEP = {{'databases': {{{alias!r}: False}}}}",
                )
            )
            continue
        if not isinstance(more, dict):
            problems.append(
                Problem(
                    f"DBKEEP['databases'][{alias!r}]",
                    "must be a dict of that database's dbkeep keys, or False",
                )
            )
            more = {}
        url, _kind = _database_url(alias, db, problems)
        if url is None:
            continue
        names.append(alias)
        w.blank()
        w.header(["databases"], setting, array=True)
        w.pair("name", alias, setting)
        w.pair("url", url, setting)
        if db.get("PASSWORD"):
            var = _password_env(alias)
            env[var] = str(db["PASSWORD"])
            w.pair("password_env", var, f"{setting}['PASSWORD']")
        for key, v in more.items():
            where = f"DBKEEP['databases'][{alias!r}][{key!r}]"
            if key in ("name", "url", "password_env"):
                problems.append(Problem(where, f"comes from {setting}; set it there"))
                continue
            try:
                w.pair(str(key), v, where)
            except TypeError as e:
                problems.append(Problem(where, str(e)))
    for key, v in tables.items():
        w.blank()
        where = f"DBKEEP[{key!r}]"
        try:
            if _toml.is_table(v):
                w.table([str(key)], v, where)
            else:
                for i, item in enumerate(v):
                    w.table([str(key)], item, f"{where}[{i}]", array=True)
        except TypeError as e:
            problems.append(Problem(where, str(e)))
    return Built(
        text=w.text(),
        env=env,
        backup_dir=backup_dir,
        state_dir=state_dir,
        config_path=state_dir / "dbkeep.toml",
        databases=names,
        problems=problems,
        writer=w,
    )


def write(built: Built) -> Path:
    """Writes the configuration (atomically, mode 0600, its folders 0700); returns its path."""
    for folder in (built.backup_dir, built.state_dir):
        folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(built.state_dir, 0o700)
    path = built.config_path
    if path.exists() and path.read_text(encoding="utf-8") == built.text:
        return path
    fd, temp = tempfile.mkstemp(prefix=".dbkeep.toml.", dir=built.state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(built.text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return path
