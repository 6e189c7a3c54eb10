//! flowd-store's tests, in one binary.
//!
//! The behaviour every backend must have is written once, as `async fn(&dyn Store)` functions in
//! the modules below (the conformance suite), and run against each backend by
//! [`conformance_suite!`]: a new backend adds one line at the bottom of this file. Tests of one
//! backend's own properties (files, permissions, …) live in that backend's module.

mod alerts;
mod async_calls;
mod audit;
mod changes;
mod common;
mod database_size;
mod execution_counts;
mod executions;
mod idempotency_keys;
mod migrate;
mod nodes;
mod postgres_only;
mod retention;
mod schedules;
mod secret_key;
mod settings;
mod sqlite;
mod sqlite_retention;
mod stored_requests;
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
                    lists_teams_by_name,
                    creating_a_team_audited_records_its_entry,
                    a_team_not_created_records_no_entry,
                    renames_a_team_and_records_the_entry,
                    renaming_a_team_to_a_taken_name_is_a_conflict_and_records_nothing,
                    renaming_an_unknown_team_is_not_found,
                    deletes_a_team_with_its_keys_and_records_the_entry,
                    a_team_with_workflows_is_not_deleted,
                    deleting_an_unknown_team_is_not_found,
                    a_key_reads_back_with_its_role_prefix_expiry_and_last_use,
                    lists_the_keys_of_a_team_or_of_every_team,
                    creating_a_key_audited_records_its_entry,
                    revoking_a_key_deletes_it_and_records_the_entry,
                    revoking_an_unknown_key_answers_false_and_records_nothing,
                    touching_a_key_records_its_last_use,
                ],
                audit: [
                    creating_a_workflow_audited_records_its_entry,
                    a_workflow_not_created_records_no_entry,
                    an_update_records_each_of_its_entries,
                    an_update_of_a_missing_workflow_records_nothing,
                    a_new_version_audited_records_its_entry,
                    a_duplicate_version_records_no_entry,
                    a_delete_audited_records_its_entry_once,
                    an_entry_commits_with_the_settings_change_it_records,
                    an_entry_of_a_failed_commit_is_not_kept,
                    entries_are_listed_newest_first,
                    entries_filter_by_team,
                    entries_filter_by_workflow_id_or_name,
                    entries_filter_by_actor_id_or_name,
                    entries_filter_by_time_and_page_by_id,
                    the_retention_deletes_only_older_entries,
                    entries_outlive_what_they_name,
                ],
                database_size: [database_size_grows_with_what_is_stored],
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
                ],
                nodes: [
                    a_registered_node_is_listed_with_its_lease,
                    registering_another_stores_node_is_a_conflict,
                    renewing_a_lease_moves_its_expiry,
                    renewing_the_lease_of_an_unregistered_node_answers_false,
                    a_node_whose_lease_lasts_is_not_reaped,
                    reaping_a_dead_node_interrupts_its_running_executions_only,
                    a_reaped_node_is_gone_and_cannot_renew_its_lease,
                    executions_left_running_by_no_registered_node_are_reaped,
                    concurrent_reaps_reap_a_dead_node_once,
                    slots_are_taken_up_to_the_limit,
                    a_released_slot_can_be_taken_again,
                    releasing_a_slot_not_held_changes_nothing,
                    slots_of_one_workflow_leave_another_alone,
                    a_lowered_limit_counts_the_slots_below_it,
                    concurrent_acquires_never_exceed_the_limit,
                    a_dead_nodes_slots_are_released_when_it_is_reaped,
                    a_slot_for_an_unregistered_node_is_not_found,
                    a_slot_of_a_missing_workflow_is_not_found,
                    a_deleted_workflow_takes_its_slots_with_it,
                ],
                execution_counts: [
                    counts_by_status_in_status_order,
                    counts_only_executions_started_since,
                    counts_only_the_workflows_executions,
                ],
                changes: [
                    a_created_workflow_is_published,
                    an_updated_workflow_is_published,
                    a_new_version_and_its_outcome_are_published_as_updates,
                    a_deleted_workflow_is_published,
                    a_claimed_fire_time_is_not_published,
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
                    a_claimed_call_carries_the_claiming_node,
                    reaping_a_dead_node_queues_its_claimed_calls_again,
                    a_reap_leaves_the_claimed_calls_of_a_live_node,
                    calls_claimed_by_no_registered_node_are_queued_again_by_a_reap,
                    a_call_is_not_claimed_before_its_not_before,
                    a_waiting_retry_does_not_hold_back_the_calls_after_it,
                    a_retried_call_is_queued_as_its_next_attempt,
                ],
                idempotency_keys: [
                    a_free_key_is_claimed,
                    a_held_key_answers_its_holder_and_keeps_it,
                    a_response_committed_with_its_execution_is_stored,
                    a_response_whose_commit_fails_is_not_stored,
                    an_expired_key_is_claimed_again_without_its_response,
                    a_stale_key_without_response_is_taken_over,
                    a_running_key_not_yet_stale_is_not_taken_over,
                    concurrent_claims_of_one_key_claim_it_once,
                    a_response_for_a_key_taken_over_changes_nothing,
                    release_gives_back_a_key_without_response,
                    release_keeps_a_completed_key_and_another_executions_key,
                    delete_expired_removes_only_expired_keys,
                    claim_for_a_missing_workflow_is_not_found,
                    keys_go_with_their_workflow,
                    keys_of_another_workflow_are_apart,
                ],
                retention: [
                    prune_keeps_the_newest_executions,
                    prune_deletes_executions_started_before_the_cut,
                    prune_deletes_at_most_the_limit_oldest_first,
                    prune_never_deletes_a_running_execution,
                    prune_leaves_other_workflows_alone,
                    prune_within_retention_deletes_nothing,
                    workflow_retentions_lists_every_workflow_with_its_own,
                ],
                alerts: [
                    the_first_alert_is_sent_with_nothing_suppressed,
                    alerts_inside_the_interval_are_suppressed_and_counted_by_the_next_sent,
                    a_zero_interval_sends_every_alert,
                    concurrent_claims_inside_one_interval_send_one_alert,
                    the_rate_limits_of_two_workflows_are_apart,
                    claiming_an_alert_of_a_missing_workflow_is_not_found,
                    deliveries_read_back_newest_first,
                    a_delivery_recorded_again_is_updated_to_its_latest_attempt,
                    recording_a_delivery_of_a_missing_workflow_is_not_found,
                    deliveries_go_with_their_workflow,
                    deliveries_go_with_their_pruned_execution,
                ],
                stored_requests: [
                    a_stored_request_reads_back_as_received,
                    an_execution_without_a_stored_request_reads_none,
                    a_request_without_its_execution_is_refused_and_not_kept,
                    a_stored_request_is_deleted_with_its_execution_by_retention,
                    a_stored_request_is_deleted_with_its_workflow,
                    executions_list_oldest_first_within_a_time_range,
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
