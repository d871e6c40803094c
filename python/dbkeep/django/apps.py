"""The Django app ``dbkeep.django`` (label ``dbkeep``)."""

from django.apps import AppConfig


class DbkeepConfig(AppConfig):
    name = "dbkeep.django"
    label = "dbkeep"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from . import supervisor

        supervisor.autostart()
