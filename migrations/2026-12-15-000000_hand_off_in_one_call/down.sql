DROP FUNCTION finish_and_hand_off;
DROP FUNCTION start_queued_run;
