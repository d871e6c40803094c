-- Notification channels were named by their whole URL, whose path is the secret of Slack's,
-- Discord's and healthchecks.io's URLs ("webhook https://hooks.slack.com/services/T/B/X").
-- They are named by scheme, host and port now, as the channels name themselves: each kept
-- failure's channel loses everything from the first `/`, `?` or `#` after its `://`.
UPDATE failed_notifications
SET channel = substr(
    channel,
    1,
    instr(channel, '://') + 1
        + instr(replace(replace(substr(channel, instr(channel, '://') + 3), '?', '/'), '#', '/'), '/')
)
WHERE (channel LIKE 'webhook %' OR channel LIKE 'ping %' OR channel LIKE 'email %')
    AND instr(channel, '://') > 0
    AND instr(replace(replace(substr(channel, instr(channel, '://') + 3), '?', '/'), '#', '/'), '/') > 0;
