"""dbkeep inside a Django project: add ``"dbkeep.django"`` to ``INSTALLED_APPS``.

* The databases of ``DATABASES``, ``BACKUP_DIR``, ``BACKUP_RETENTION_DAYS`` and an optional
  ``DBKEEP = {...}`` become dbkeep's configuration (:mod:`dbkeep.django.conf`), checked by
  ``manage.py check``.
* When the web server starts, one supervised ``dbkeep serve`` runs per host
  (:mod:`dbkeep.django.supervisor`) and backs up on schedule.
* ``manage.py backup_database``, ``restore_database``, ``verify_backups``, ``list_backups``.
* A "Backup histories" page in the Django admin, for staff with ``dbkeep.view_backups``.
"""
