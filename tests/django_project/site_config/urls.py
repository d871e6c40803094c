from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import path, re_path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The admin's stylesheets straight from the apps (a test site: no collectstatic, no CDN).
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
