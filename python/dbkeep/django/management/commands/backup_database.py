"""``manage.py backup_database``: back up the project's databases now (``dbkeep backup``).

Options and exit codes as the original design's command: ``--retention-days N`` prunes
backups older than N days instead of ``BACKUP_RETENTION_DAYS``, ``--no-cleanup`` prunes
nothing; exit 0 when every backup succeeded, 1 when one failed, 2 for bad settings or options.
"""

from dbkeep.django.commands import DbkeepCommand


class Command(DbkeepCommand):
    help = "Back up the project's databases now (all of them, or --database ALIAS)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--retention-days",
            type=int,
            metavar="N",
            help="prune backups older than N days instead of BACKUP_RETENTION_DAYS",
        )
        parser.add_argument(
            "--no-cleanup", action="store_true", help="do not prune old backups afterwards"
        )
        parser.add_argument(
            "--database",
            action="append",
            metavar="ALIAS",
            help="back up only this DATABASES alias (repeat for several) [default: all]",
        )

    def handle(self, *args, **options):
        argv = ["backup"]
        for alias in options["database"] or []:
            argv += ["--database", alias]
        if options["retention_days"] is not None:
            argv += ["--retention-days", str(options["retention_days"])]
        if options["no_cleanup"]:
            argv.append("--no-cleanup")
        self.dbkeep(argv)
