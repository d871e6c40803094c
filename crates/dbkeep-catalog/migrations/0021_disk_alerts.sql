-- Disks (a host and a backup folder) announced filling up: each episode is announced once,
-- also across restarts and by one of several instances that share the disk.
CREATE TABLE disk_alerts (
    disk TEXT PRIMARY KEY,
    announced_at TEXT NOT NULL
);
