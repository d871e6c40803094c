from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="BackupHistory",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
            options={
                "verbose_name": "backup history",
                "verbose_name_plural": "backup histories",
                "managed": False,
                "default_permissions": (),
                "permissions": [("view_backups", "Can view backup histories and download backups")],
            },
        ),
    ]
