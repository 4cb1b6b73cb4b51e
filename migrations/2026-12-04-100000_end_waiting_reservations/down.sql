-- Reservations that ended while waiting held nothing: they end where they
-- ended.
UPDATE reservations SET starts_at = ended_at, expires_at = ended_at
    WHERE state = 'ended' AND (starts_at IS NULL OR expires_at IS NULL);
ALTER TABLE reservations DROP CONSTRAINT reservations_active_has_times;
ALTER TABLE reservations ADD CONSTRAINT reservations_check
    CHECK (state = 'waiting' OR (starts_at IS NOT NULL AND expires_at IS NOT NULL));
