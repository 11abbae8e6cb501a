-- 005_webhook_pruning: finished webhook deliveries (delivered or failed) are removed once
-- older than `--webhook-retention`; this index finds them without reading the pending ones.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE status <> 'pending';
