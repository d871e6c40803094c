"""Settings of the sample project: a Django site with the admin and dbkeep.django.

The tests choose the database and the folders through the environment:
DBKEEP_TEST_STATE (a private folder: the SQLite file, backups), DBKEEP_TEST_ENGINE
(sqlite or postgres), DBKEEP_TEST_PG_NAME, DBKEEP_TEST_SCHEDULE (a cron expression), and
DBKEEP_TEST_BAD (which bad setting to make: engine, backup_dir, cron, default_cron,
retention).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STATE = Path(os.environ["DBKEEP_TEST_STATE"])

SECRET_KEY = "dbkeep-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "dbkeep.django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "site_config.urls"
WSGI_APPLICATION = "site_config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("DBKEEP_TEST_ENGINE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["DBKEEP_TEST_PG_NAME"],
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "USER": "postgres",
            # The test server trusts loopback: the password is only there to be kept secret.
            "PASSWORD": "django-db-password-not-on-any-command-line",
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": STATE / "db.sqlite3",
        }
    }

TIME_ZONE = "Europe/Berlin"
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# dbkeep, as the original design configured it.
BACKUP_DIR = STATE / "backups"
BACKUP_RETENTION_DAYS = 30
DBKEEP = {
    # Every database's schedules, unless its own entry names some.
    "schedules": [os.environ.get("DBKEEP_TEST_SCHEDULE", "0 0 * * *")],
    "databases": {"default": {}},
    "misfire_grace": "1s",
}

BAD = os.environ.get("DBKEEP_TEST_BAD")
if BAD == "engine":
    DATABASES["legacy"] = {"ENGINE": "django.db.backends.dummy", "NAME": "legacy"}
elif BAD == "backup_dir":
    BACKUP_DIR = STATE / "no" / "such" / "backups"
elif BAD == "cron":
    DBKEEP["databases"]["default"]["schedules"] = ["61 * * * *"]
elif BAD == "default_cron":
    DBKEEP["schedules"] = ["61 * * * *"]
elif BAD == "retention":
    BACKUP_RETENTION_DAYS = "thirty"
