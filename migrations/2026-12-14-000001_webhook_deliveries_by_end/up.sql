-- Deliveries that ended (sent, or given up on) are pruned by age with the
-- insights rows; this finds them without reading the pending ones.
CREATE INDEX webhook_deliveries_by_end ON webhook_deliveries ((coalesce(delivered_at, failed_at)))
    WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL;
