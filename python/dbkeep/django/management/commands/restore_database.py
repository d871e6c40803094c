"""``manage.py restore_database``: restore a backup (``dbkeep restore``), its SHA-256 checked
first. Into the alias's own database unless ``--to`` names another target; a target that has
content is replaced only with ``--force``."""

import json

from django.core.management.base import CommandError

from dbkeep.django import binary, conf
from dbkeep.django.commands import DbkeepCommand


class Command(DbkeepCommand):
    help = (
        "Restore a backup (an id, or --latest of --database) into its database, or --to "
        "another target."
    )

    def add_arguments(self, parser):
        parser.add_argument("id", nargs="?", type=int, help="the backup's id (see list_backups)")
        parser.add_argument(
            "--latest", action="store_true", help="the newest successful backup of --database"
        )
        parser.add_argument("--database", metavar="ALIAS", help="the DATABASES alias")
        parser.add_argument(
            "--to",
            metavar="TARGET",
            help="a SQLite path or a postgres:// or mysql:// URL [default: the alias's own database]",
        )
        parser.add_argument("--force", action="store_true", help="replace a target that has content")
        parser.add_argument("--create", action="store_true", help="create the target database first")
        parser.add_argument("--no-owner", action="store_true")
        parser.add_argument("--no-privileges", action="store_true")
        parser.add_argument("--from", dest="source", metavar="NAME", help="an off-site copy")

    def handle(self, *args, **options):
        if (options["id"] is None) == (not options["latest"]):
            raise CommandError("give a backup id or --latest (with --database)", returncode=2)
        argv = ["restore"]
        alias = options["database"]
        if options["id"] is not None:
            argv.append(str(options["id"]))
            if alias is None:
                done = binary.run(
                    ["list", "--json", "--id", str(options["id"])], capture_output=True, text=True
                )
                rows = json.loads(done.stdout or "[]") if done.returncode == 0 else []
                if not rows:
                    raise CommandError(f"no backup #{options['id']}; see list_backups", returncode=2)
                alias = rows[0]["database"]
        else:
            if alias is None:
                raise CommandError("--latest needs --database ALIAS", returncode=2)
            argv += ["--latest", "--database", alias]
        target = options["to"]
        if target is None:
            from django.conf import settings

            db = settings.DATABASES.get(alias)
            if db is None:
                raise CommandError(f"{alias!r} is not an alias of DATABASES", returncode=2)
            url, _ = conf._database_url(alias, db, [])
            if url is None:
                raise CommandError(f"DATABASES[{alias!r}] cannot be restored into", returncode=2)
            target = url.removeprefix("sqlite:")
            if db.get("PASSWORD"):
                argv += ["--password-env", conf._password_env(alias)]
        argv += ["--to", target]
        for flag in ("force", "create", "no_owner", "no_privileges"):
            if options[flag]:
                argv.append("--" + flag.replace("_", "-"))
        if options["source"]:
            argv += ["--from", options["source"]]
        self.dbkeep(argv)
