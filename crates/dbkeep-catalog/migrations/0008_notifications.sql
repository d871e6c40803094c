-- Notifications that could not be delivered after every try (webhooks, pings): logged, kept
-- here, and counted by /metrics per channel.
CREATE TABLE failed_notifications (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    database TEXT NOT NULL,
    backup_id INTEGER,
    error TEXT NOT NULL
);
CREATE INDEX failed_notifications_channel ON failed_notifications (channel);
