"""No tables: the history lives in dbkeep's catalog. This unmanaged model only gives the
admin its "Backup histories" page and the permission ``dbkeep.view_backups``."""

from django.db import models


class BackupHistory(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_backups", "Can view backup histories and download backups")]
        verbose_name = "backup history"
        verbose_name_plural = "backup histories"
