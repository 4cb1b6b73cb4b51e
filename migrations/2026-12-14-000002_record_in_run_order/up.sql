-- A listed run is recorded after the listed runs of its environment that
-- came before it: flips and last results compare a run with the one
-- before it on the environment, so recording them out of order (a
-- reclaim of the next run ahead of the sweep, a recording that gave up
-- on a stuck session) would lose a flip. Lower ids first, as the sweep
-- takes them, so that two recordings never lock in opposite orders.
CREATE OR REPLACE FUNCTION record_listed_run(listed_run BIGINT) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '200ms' AS $$
DECLARE
    finished test_runs%ROWTYPE;
    earlier BIGINT;
BEGIN
    SELECT * INTO finished FROM test_runs WHERE id = listed_run;
    IF finished.environment_id IS NOT NULL THEN
        FOR earlier IN
            SELECT l.run_id FROM runs_to_record l JOIN test_runs t ON t.id = l.run_id
            WHERE t.environment_id = finished.environment_id AND l.run_id < listed_run
            ORDER BY l.run_id
        LOOP
            PERFORM record_listed_run(earlier);
        END LOOP;
    END IF;
    DELETE FROM runs_to_record WHERE run_id = listed_run;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF finished.id IS NOT NULL THEN
        PERFORM count_environment_run(finished);
        PERFORM record_test_results(listed_run);
        PERFORM record_environment_results(listed_run);
    END IF;
    RETURN true;
END
$$;
