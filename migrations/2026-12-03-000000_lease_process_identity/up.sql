-- What tells a recorded process group from a later one that got the same
-- number (after a reboot, or once the group is gone): the machine's boot
-- id and the start time of the group's leader, in clock ticks after boot
-- (/proc/<pid>/stat). A restarted instance kills a group of its past life
-- only if both still match.
ALTER TABLE environment_locks
    ADD COLUMN boot_id text,
    ADD COLUMN start_ticks bigint;
