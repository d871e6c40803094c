-- Notification channels were named by their whole URL, whose path is the secret of Slack's,
-- Discord's and healthchecks.io's URLs ("webhook https://hooks.slack.com/services/T/B/X").
-- They are named by scheme, host and port now, as the channels name themselves: each kept
-- failure's channel loses everything from the first `/`, `?` or `#` after its `://`.
UPDATE failed_notifications
SET channel = regexp_replace(channel, '^((webhook|ping|email) [^:]*://[^/?#]*)[/?#].*$', '\1')
WHERE channel ~ '^(webhook|ping|email) [^:]*://[^/?#]*[/?#]';
