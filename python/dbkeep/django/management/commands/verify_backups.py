"""``manage.py verify_backups``: prove backups restorable (``dbkeep verify``): by default the
newest backup of each database is restored into a throwaway database, which is removed."""

from dbkeep.django.commands import DbkeepCommand


class Command(DbkeepCommand):
    help = "Verify backups: the newest of each database by default, by a real restore."

    def add_arguments(self, parser):
        parser.add_argument("id", nargs="?", type=int, help="one backup's id (see list_backups)")
        parser.add_argument("--all", action="store_true", help="every stored backup")
        parser.add_argument("--database", metavar="ALIAS", help="only this DATABASES alias")
        parser.add_argument(
            "--level",
            choices=["checksum", "readable", "restore"],
            default="restore",
            help="how deeply [default: restore]",
        )
        parser.add_argument("--from", dest="source", metavar="NAME", help="an off-site copy")

    def handle(self, *args, **options):
        argv = ["verify", "--level", options["level"]]
        if options["id"] is not None:
            argv.append(str(options["id"]))
        elif options["all"]:
            argv.append("--all")
        else:
            argv.append("--latest")
        if options["database"]:
            argv += ["--database", options["database"]]
        if options["source"]:
            argv += ["--from", options["source"]]
        self.dbkeep(argv)
