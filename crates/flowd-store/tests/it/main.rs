//! flowd-store's tests, in one binary.
//!
//! The behaviour every backend must have is written once, as `async fn(&dyn Store)` functions in
//! the modules below (the conformance suite), and run against each backend by
//! [`conformance_suite!`]: a new backend adds one line at the bottom of this file. Tests of one
//! backend's own properties (files, permissions, …) live in that backend's module.

mod async_calls;
mod common;
mod execution_counts;
mod executions;
mod postgres_only;
mod schedules;
mod settings;
mod sqlite;
mod teams;
mod workflows;

/// Runs every conformance test against the backend that `$open` (an `async fn() -> Backend`)
/// opens, as tests named `$backend::<module>::<test>`.
macro_rules! conformance_suite {
    ($backend:ident, $open:path) => {
        mod $backend {
            conformance_suite!(@tests $open;
                teams: [
                    creates_and_reads_back_a_team,
                    unknown_team_reads_as_none,
                    team_name_taken_is_a_conflict,
                    counts_teams,
                    creates_and_finds_an_api_key_by_hash,
                    unknown_api_key_hash_reads_as_none,
                    api_key_hash_taken_is_a_conflict,
                    api_key_of_unknown_team_is_not_found,
                    counts_the_admin_keys_of_a_team,
                ],
                workflows: [
                    creates_and_reads_back_every_field_of_a_workflow,
                    creates_and_reads_back_a_workflow_without_optional_fields,
                    workflow_name_taken_in_the_team_is_a_conflict,
                    same_workflow_name_in_another_team_is_allowed,
                    failed_create_leaves_no_version_or_settings,
                    workflow_of_unknown_team_is_not_found,
                    unknown_workflow_reads_as_none,
                    lists_a_teams_workflows_by_name,
                    update_replaces_every_column_but_id_team_created_at_and_version,
                    rename_to_a_taken_name_is_a_conflict,
                    update_of_a_missing_workflow_is_not_found,
                    add_version_keeps_the_active_version,
                    a_ready_version_becomes_active,
                    a_failed_version_leaves_the_active_one,
                    a_workflow_created_building_has_no_active_version,
                    a_settled_version_keeps_every_character_of_its_build_log,
                    an_older_version_ready_late_does_not_replace_a_newer_active_one,
                    settling_twice_is_a_conflict,
                    settling_an_unknown_version_is_not_found,
                    building_versions_lists_only_builds_going,
                    duplicate_version_is_a_conflict_and_changes_nothing,
                    add_version_to_a_missing_workflow_is_not_found,
                    versions_are_listed_newest_first,
                    unknown_version_reads_as_none,
                    delete_cascades_to_versions_settings_and_executions,
                    delete_returns_false_the_second_time,
                    delete_leaves_other_workflows_alone,
                ],
                settings: [
                    created_workflow_has_its_initial_settings,
                    settings_of_an_unknown_workflow_are_empty,
                    settings_keep_json_values_exactly,
                    replace_settings_replaces_every_key,
                    replace_settings_of_a_missing_workflow_is_not_found,
                    change_upserts_added_and_changed_keys,
                    change_deletes_removed_keys,
                    change_keeps_untouched_keys,
                    changes_to_different_keys_both_survive,
                    on_the_same_key_the_later_change_wins,
                    concurrent_commits_to_different_keys_all_persist,
                    change_to_a_missing_workflow_is_not_found,
                ],
                executions: [
                    puts_and_reads_back_every_field_of_an_execution,
                    puts_and_reads_back_an_execution_without_optional_fields,
                    an_execution_keeps_every_character_its_workflow_produced,
                    unknown_execution_reads_as_none,
                    put_execution_upsert_finishes_a_running_row,
                    commit_stores_an_execution_and_its_settings_change_together,
                    commit_applies_writes_in_order,
                    empty_commit_is_a_no_op,
                    commit_with_a_failing_write_leaves_nothing_of_the_batch,
                    claimed_fire_time_is_a_conflict,
                    executions_without_fire_time_do_not_collide,
                    same_fire_time_in_another_workflow_is_allowed,
                    put_execution_of_a_missing_workflow_is_not_found,
                    list_is_newest_first,
                    list_filters_by_workflow,
                    list_filters_by_status,
                    list_pages_with_before_id,
                    list_limit_is_capped_at_1000,
                    list_limit_zero_means_50,
                    interrupt_marks_only_running_executions_and_returns_the_count,
                ],
                execution_counts: [
                    counts_by_status_in_status_order,
                    counts_only_executions_started_since,
                    counts_only_the_workflows_executions,
                ],
                schedules: [
                    due_workflows_are_those_at_or_before_now_earliest_first,
                    due_workflows_leave_out_disabled_ones_and_respect_the_limit,
                    earliest_fire_at_is_the_smallest_next_fire_at,
                    claiming_a_due_fire_time_starts_the_run_and_advances_the_schedule,
                    a_fire_time_is_claimed_exactly_once,
                    concurrent_claims_of_one_fire_time_start_one_run,
                    a_tick_while_a_run_is_going_is_recorded_as_skipped_and_consumed,
                    a_manual_claim_while_a_run_is_going_records_nothing,
                    a_finished_run_no_longer_blocks_the_next_claim,
                    an_empty_batch_of_claims_claims_nothing,
                    claiming_a_batch_starts_each_run_and_advances_each_schedule,
                    a_batch_answers_each_claim_as_claim_run_would_have,
                    a_batch_claim_of_a_fire_time_already_recorded_undoes_only_that_claim,
                    claims_of_one_workflow_in_a_batch_see_the_ones_before_them,
                    concurrent_batches_of_the_same_fire_times_start_each_run_once,
                ],
                async_calls: [
                    an_enqueued_call_reads_back_by_its_token,
                    a_full_queue_refuses_and_writes_nothing,
                    claims_take_a_workflows_calls_oldest_first,
                    a_claim_whose_lease_ended_is_claimed_again,
                    a_finished_call_keeps_its_response_and_leaves_the_queue,
                    released_calls_are_queued_again,
                    a_call_of_a_missing_workflow_is_not_found,
                    deleting_a_workflow_deletes_its_calls,
                ],
            );
        }
    };
    (@tests $open:path; $($module:ident: [$($test:ident),* $(,)?]),* $(,)?) => {
        $(mod $module {
            $(
                #[tokio::test]
                async fn $test() {
                    let backend = $open().await;
                    crate::$module::$test(backend.store()).await;
                }
            )*
        })*
    };
}

conformance_suite!(sqlite_file, crate::common::sqlite_file);
conformance_suite!(sqlite_memory, crate::common::sqlite_memory);
conformance_suite!(postgres, crate::common::postgres);
