"""The Django admin's "Backup histories" page: dbkeep's catalog, read through the ``dbkeep``
executable (``dbkeep status --json``, ``dbkeep list --json``), never copied into Django's
tables; and downloads streamed through Django from ``dbkeep download``, for staff with the
permission ``dbkeep.view_backups`` only."""

from __future__ import annotations

import json
import subprocess
import zoneinfo
from datetime import datetime

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.http import content_disposition_header

from . import binary
from .models import BackupHistory

PERMISSION = "dbkeep.view_backups"
#: Rows shown, newest first.
SHOWN = 200
CHUNK = 64 * 1024

COLOURS = {
    "success": "green",
    "failed": "red",
    "in_progress": "orange",
    "pruned": "grey",
    "offsite_only": "green",
    "protected": "green",
    "not_offsite": "orange",
    "stale": "orange",
    "unprotected": "red",
    "failing": "red",
    "gone": "grey",
}
WORDS = {"in_progress": "running", "not_offsite": "not off-site", "offsite_only": "off-site only"}


def _zone():
    try:
        return zoneinfo.ZoneInfo(settings.TIME_ZONE or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _offsite_copies(record):
    """The off-site destinations that still hold a copy of a listed backup."""
    return [
        c["store"]
        for c in record.get("copies") or []
        if c.get("state") == "uploaded" and not c.get("pruned_at")
    ]


def _state(record):
    """A listed backup's state as the page shows it: retention may have deleted its local file
    while off-site copies remain ("offsite_only"), or every copy ("pruned")."""
    if record["status"] == "success" and record.get("pruned_at"):
        return "offsite_only" if _offsite_copies(record) else "pruned"
    return record["status"]


def _local(text):
    if not text:
        return ""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.astimezone(_zone()).strftime("%Y-%m-%d %H:%M:%S %Z")


def _size(n):
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _duration(ms):
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {(ms % 60_000) // 1000} s"


def _json(args):
    done = binary.run(args, capture_output=True, text=True, timeout=60)
    # `status` exits 1 when a database is not protected: its JSON is still the answer.
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(done.stderr.strip() or f"dbkeep {' '.join(args)} failed")
    return json.loads(done.stdout)


@admin.register(BackupHistory)
class BackupHistoryAdmin(admin.ModelAdmin):
    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff and request.user.has_perm(PERMISSION)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:backup_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="%s_%s_download" % info,
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        database = request.GET.get("database") or None
        error = None
        try:
            verdicts = _json(["status", "--json"])
            args = ["list", "--json", "--limit", str(SHOWN)]
            if database:
                args += ["--database", database]
            records = _json(args)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            verdicts, records, error = [], [], str(e)
        for v in verdicts:
            v["colour"] = COLOURS.get(v["status"], "grey")
            v["word"] = WORDS.get(v["status"], v["status"])
            v["last_good_local"] = _local(v.get("last_good"))
        for r in records:
            state = _state(r)
            r["state"] = state
            r["colour"] = COLOURS.get(state, "grey")
            r["word"] = WORDS.get(state, state)
            r["started_local"] = _local(r.get("started_at"))
            r["finished_local"] = _local(r.get("finished_at"))
            r["size"] = _size(r.get("size_bytes"))
            r["duration"] = _duration(r.get("duration_ms"))
            r["downloadable"] = state in ("success", "offsite_only")
        context = {
            **self.admin_site.each_context(request),
            "title": "Backup histories",
            "opts": self.opts,
            "verdicts": verdicts,
            "records": records,
            "database": database,
            "error": error,
            "shown": SHOWN,
            "time_zone": str(_zone()),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "dbkeep/backup_histories.html", context)

    def download_view(self, request, backup_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            found = _json(["list", "--json", "--id", str(backup_id)])
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            raise Http404(str(e)) from e
        if not found or _state(found[0]) not in ("success", "offsite_only"):
            raise Http404(f"backup #{backup_id} has no file to download")
        record = found[0]
        proc = binary.popen(
            ["download", str(backup_id)],
            # dbkeep's audit log names the Django user who downloaded it.
            extra_env={"DBKEEP_AUDIT_ACTOR": f"django:{request.user.get_username()}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = proc.stdout.read(CHUNK)
        if not first:
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.wait()
            if proc.returncode != 0 or record.get("size_bytes"):
                raise Http404(err or f"backup #{backup_id} cannot be read")

        def stream():
            try:
                if first:
                    yield first
                while chunk := proc.stdout.read(CHUNK):
                    yield chunk
                if proc.wait() != 0:
                    # The client gets a broken download rather than a damaged file that looks whole.
                    err = proc.stderr.read().decode("utf-8", "replace").strip()
                    raise OSError(f"dbkeep download {backup_id}: {err}")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()

        response = StreamingHttpResponse(stream(), content_type="application/octet-stream")
        name = record.get("file_name") or f"backup-{backup_id}"
        response["Content-Disposition"] = content_disposition_header(True, name)
        if record.get("size_bytes") is not None:
            response["Content-Length"] = str(record["size_bytes"])
        if record.get("sha256"):
            response["X-Dbkeep-SHA256"] = record["sha256"]
        response["Cache-Control"] = "no-store"
        return response
