// @generated automatically by Diesel CLI.

diesel::table! {
    environment_health_actions (environment_id) {
        environment_id -> Int4,
        last_run_id -> Int8,
        applied_at -> Timestamptz,
        reason -> Text,
    }
}

diesel::table! {
    environment_locks (environment_id) {
        environment_id -> Int4,
        run_id -> Int8,
        holder -> Text,
        fence -> Int8,
        expires_at -> Timestamptz,
        pgid -> Nullable<Int4>,
        acquired_at -> Timestamptz,
        boot_id -> Nullable<Text>,
        start_ticks -> Nullable<Int8>,
    }
}

diesel::table! {
    environment_run_stats (period, starts_at, environment_id) {
        period -> Text,
        starts_at -> Timestamptz,
        environment_id -> Int4,
        runs -> Int4,
        failed_runs -> Int4,
    }
}

diesel::table! {
    environment_streaks (environment_id) {
        environment_id -> Int4,
        failed_runs -> Int4,
        last_run_id -> Int8,
        last_finished_at -> Timestamptz,
    }
}

diesel::table! {
    environment_test_stats (period, starts_at, environment_id, nodeid) {
        period -> Text,
        starts_at -> Timestamptz,
        environment_id -> Int4,
        nodeid -> Text,
        passes -> Int4,
        failures -> Int4,
    }
}

diesel::table! {
    environments (id) {
        id -> Int4,
        name -> Text,
        description -> Text,
        variables -> Jsonb,
        run_timeout_secs -> Nullable<Int4>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        labels -> Array<Text>,
        maintenance_reason -> Nullable<Text>,
        maintenance_since -> Nullable<Timestamptz>,
        maintenance_until -> Nullable<Timestamptz>,
        protected -> Bool,
        allowed_users -> Array<Text>,
    }
}

diesel::table! {
    reservations (id) {
        id -> Int8,
        environment_id -> Int4,
        owner -> Text,
        reason -> Text,
        kind -> Text,
        state -> Text,
        minutes -> Int4,
        queue_order -> Int8,
        run_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        starts_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    run_cases (id) {
        id -> Int8,
        run_id -> Int8,
        nodeid -> Text,
        outcome -> Text,
        duration_ms -> Int8,
        message -> Nullable<Text>,
    }
}

diesel::table! {
    run_log_chunks (run_id, start_offset) {
        run_id -> Int8,
        start_offset -> Int8,
        content -> Text,
    }
}

diesel::table! {
    run_reports (run_id) {
        run_id -> Int8,
        junit_xml -> Text,
    }
}

diesel::table! {
    state_version (shard) {
        shard -> Int2,
        changes -> Int8,
    }
}

diesel::table! {
    test_flips (id) {
        id -> Int8,
        nodeid -> Text,
        environment_id -> Int4,
        run_id -> Int8,
        flipped_at -> Timestamptz,
        previous_run_id -> Int8,
        previous_at -> Timestamptz,
    }
}

diesel::table! {
    test_last_results (environment_id, nodeid) {
        environment_id -> Int4,
        nodeid -> Text,
        passed -> Bool,
        run_id -> Int8,
        finished_at -> Timestamptz,
    }
}

diesel::table! {
    test_period_stats (period, starts_at, nodeid) {
        period -> Text,
        starts_at -> Timestamptz,
        nodeid -> Text,
        failures -> Int4,
        durations_ms -> Bytea,
        histogram -> Bytea,
        first_run_id -> Int8,
    }
}

diesel::table! {
    test_runs (id) {
        id -> Int8,
        username -> Text,
        environment_id -> Nullable<Int4>,
        paths -> Jsonb,
        status -> Text,
        status_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        exit_code -> Nullable<Int4>,
        total -> Nullable<Int4>,
        passed -> Nullable<Int4>,
        failed -> Nullable<Int4>,
        skipped -> Nullable<Int4>,
        errors -> Nullable<Int4>,
        xfailed -> Nullable<Int4>,
        xpassed -> Nullable<Int4>,
        log_bytes -> Int8,
        fence -> Nullable<Int8>,
        instance_id -> Nullable<Text>,
        cancel_requested -> Bool,
        rerun_of -> Nullable<Int8>,
        subtests_passed -> Nullable<Int4>,
        completed -> Nullable<Int4>,
        case_count -> Int4,
        hold_on_failure_minutes -> Nullable<Int4>,
        environment_label -> Nullable<Text>,
        run_group_id -> Nullable<Int8>,
        shard -> Nullable<Int4>,
        schedule_id -> Nullable<Int8>,
        scheduled_for -> Nullable<Timestamptz>,
        schedule_note -> Nullable<Text>,
        selection -> Nullable<Jsonb>,
        pinned -> Bool,
        details_removed_at -> Nullable<Timestamptz>,
        token_id -> Nullable<Int8>,
    }
}

diesel::table! {
    run_artifacts (id) {
        id -> Int8,
        run_id -> Int8,
        path -> Text,
        size -> Int8,
        content_type -> Text,
    }
}

diesel::table! {
    run_artifact_chunks (artifact_id, seq) {
        artifact_id -> Int8,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    run_case_attachments (run_id, nodeid, path) {
        run_id -> Int8,
        nodeid -> Text,
        path -> Text,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Int8,
        url -> Text,
        events -> Array<Text>,
        secret -> Nullable<Text>,
        format -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        webhook_id -> Int8,
        event -> Text,
        subject_id -> Int8,
        occurred_at -> Timestamptz,
        body -> Nullable<Text>,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        claim -> Nullable<Int8>,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
        failed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    schedules (id) {
        id -> Int8,
        name -> Text,
        cron -> Text,
        timezone -> Text,
        environment_id -> Nullable<Int4>,
        environment_label -> Nullable<Text>,
        paths -> Jsonb,
        username -> Text,
        hold_on_failure_minutes -> Nullable<Int4>,
        enabled -> Bool,
        next_run_at -> Nullable<Timestamptz>,
        last_run_id -> Nullable<Int8>,
        last_fired_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    run_groups (id) {
        id -> Int8,
        username -> Text,
        environment_label -> Text,
        paths -> Jsonb,
        shards_requested -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    instances (instance_id) {
        instance_id -> Text,
        runner_labels -> Nullable<Array<Text>>,
        lock_key -> Int8,
        started_at -> Timestamptz,
    }
}

diesel::table! {
    users (username) {
        username -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (secret_hash) {
        secret_hash -> Text,
        username -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        username -> Text,
        name -> Text,
        role -> Text,
        secret_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        run_id -> Nullable<Int8>,
    }
}

diesel::table! {
    setup_codes (username) {
        username -> Text,
        code_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        action -> Text,
        target -> Text,
        detail -> Text,
        address -> Nullable<Text>,
    }
}

diesel::joinable!(sessions -> users (username));
diesel::joinable!(api_tokens -> users (username));
diesel::joinable!(run_cases -> test_runs (run_id));
diesel::joinable!(run_log_chunks -> test_runs (run_id));
diesel::joinable!(run_reports -> test_runs (run_id));
diesel::joinable!(test_flips -> test_runs (run_id));
diesel::joinable!(run_artifact_chunks -> run_artifacts (artifact_id));
diesel::joinable!(run_artifacts -> test_runs (run_id));
diesel::joinable!(run_case_attachments -> test_runs (run_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    environment_health_actions,
    api_tokens,
    audit_log,
    sessions,
    setup_codes,
    users,
    environment_locks,
    environment_run_stats,
    environment_streaks,
    environment_test_stats,
    environments,
    instances,
    reservations,
    run_cases,
    run_groups,
    run_log_chunks,
    run_reports,
    run_artifact_chunks,
    run_artifacts,
    run_case_attachments,
    schedules,
    state_version,
    test_flips,
    test_last_results,
    test_period_stats,
    test_runs,
    webhook_deliveries,
    webhooks,
);
