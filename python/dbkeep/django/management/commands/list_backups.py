"""``manage.py list_backups``: the recorded backups, newest first (``dbkeep list``); ``--json``
prints the same JSON as ``dbkeep list --json``."""

from dbkeep.django.commands import DbkeepCommand


class Command(DbkeepCommand):
    help = "Show the recorded backups, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--database", metavar="ALIAS", help="only this DATABASES alias")
        parser.add_argument(
            "--status", choices=["success", "failed", "in_progress"], help="only this status"
        )
        parser.add_argument("--limit", type=int, metavar="N", help="at most N rows")
        parser.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args, **options):
        argv = ["list"]
        if options["database"]:
            argv += ["--database", options["database"]]
        if options["status"]:
            argv += ["--status", options["status"]]
        if options["limit"] is not None:
            argv += ["--limit", str(options["limit"])]
        if options["json"]:
            argv.append("--json")
        self.dbkeep(argv)
