ALTER TABLE environment_locks
    DROP COLUMN start_ticks,
    DROP COLUMN boot_id;
