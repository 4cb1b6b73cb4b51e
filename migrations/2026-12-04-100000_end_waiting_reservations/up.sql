-- A waiting reservation may end before it ever held its environment (its
-- owner takes it out of the queue): only an active one must have its
-- start and end.
ALTER TABLE reservations DROP CONSTRAINT reservations_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_active_has_times
    CHECK (state <> 'active' OR (starts_at IS NOT NULL AND expires_at IS NOT NULL));
