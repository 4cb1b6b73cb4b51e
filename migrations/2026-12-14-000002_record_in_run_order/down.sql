-- The function as 2026-12-13-000000_record_after_hand_off wrote it.
CREATE OR REPLACE FUNCTION record_listed_run(listed_run BIGINT) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '200ms' AS $$
DECLARE
    finished test_runs%ROWTYPE;
BEGIN
    DELETE FROM runs_to_record WHERE run_id = listed_run;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO finished FROM test_runs WHERE id = listed_run;
    IF FOUND THEN
        PERFORM count_environment_run(finished);
        PERFORM record_test_results(listed_run);
        PERFORM record_environment_results(listed_run);
    END IF;
    RETURN true;
END
$$;
