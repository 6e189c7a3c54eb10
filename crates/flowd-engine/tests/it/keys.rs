//! API keys: roles, expiry, revocation on this node and on another one, and the record of use.

use std::time::Duration;

use flowd_core::access::Role;
use flowd_engine::auth::{hash_key, DEFAULT_TEAM};
use flowd_engine::{EngineConfig, NewApiKey};
use flowd_store::ApiKeyRecord;

use crate::support::{engine, eventually, open_engine_with, Harness};

fn new_key(name: &str, role: Role) -> NewApiKey {
    NewApiKey {
        name: name.into(),
        role,
        team: None,
        expires_at: None,
    }
}

async fn created_key(harness: &Harness, role: Role) -> (String, String) {
    let created = harness
        .engine
        .create_api_key(&harness.principal, new_key("ci", role))
        .await
        .expect("key created");
    (created.key, created.record.id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_key_authenticates_with_its_role_and_team() {
    let harness = engine().await;
    let (key, id) = created_key(&harness, Role::Viewer).await;
    let principal = harness.engine.authenticate(&key).await.unwrap().unwrap();
    assert_eq!(principal.key_id, id);
    assert_eq!(principal.key_name, "ci");
    assert_eq!(principal.role, Role::Viewer);
    assert_eq!(principal.team_name, DEFAULT_TEAM);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_is_refused_at_its_next_request() {
    let harness = engine().await;
    let (key, id) = created_key(&harness, Role::Developer).await;
    assert!(harness.engine.authenticate(&key).await.unwrap().is_some());
    harness
        .engine
        .revoke_api_key(&harness.principal, &id)
        .await
        .unwrap();
    assert_eq!(harness.engine.authenticate(&key).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_key_is_refused() {
    let harness = engine().await;
    let key = "an-expired-key-of-the-test";
    let team = harness
        .engine
        .store()
        .team_by_name(DEFAULT_TEAM)
        .await
        .unwrap()
        .unwrap();
    harness
        .engine
        .store()
        .create_api_key(&ApiKeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            team_id: team.id,
            name: "old".into(),
            key_hash: hash_key(key),
            prefix: "an-expired-k".into(),
            role: Role::Admin,
            created_at: 1,
            expires_at: Some(2),
            last_used_at: None,
        })
        .await
        .unwrap();
    assert_eq!(harness.engine.authenticate(key).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_expiring_in_the_past_is_not_created() {
    let harness = engine().await;
    let result = harness
        .engine
        .create_api_key(
            &harness.principal,
            NewApiKey {
                expires_at: Some(1),
                ..new_key("late", Role::Viewer)
            },
        )
        .await;
    assert!(
        matches!(result, Err(flowd_engine::EngineError::Invalid(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_an_admin_creates_keys() {
    let harness = engine().await;
    let (key, _) = created_key(&harness, Role::Developer).await;
    let developer = harness.engine.authenticate(&key).await.unwrap().unwrap();
    let result = harness
        .engine
        .create_api_key(&developer, new_key("mine", Role::Admin))
        .await;
    assert!(
        matches!(result, Err(flowd_engine::EngineError::Forbidden(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_on_another_node_is_refused_there_once_its_cache_entry_expires() {
    let harness = engine().await;
    let other_node = open_engine_with(
        harness.dir.path(),
        EngineConfig {
            key_cache_ttl: Duration::from_millis(200),
            ..EngineConfig::default()
        },
    )
    .await;
    let (key, id) = created_key(&harness, Role::Developer).await;
    assert!(other_node.authenticate(&key).await.unwrap().is_some());
    harness
        .engine
        .revoke_api_key(&harness.principal, &id)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the other node refuses the key",
        || {
            let other_node = other_node.clone();
            let key = key.clone();
            async move {
                other_node
                    .authenticate(&key)
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invalidation_hook_makes_another_nodes_revocation_hold_at_once() {
    let harness = engine().await;
    let other_node = open_engine_with(harness.dir.path(), EngineConfig::default()).await;
    let (key, id) = created_key(&harness, Role::Developer).await;
    assert!(other_node.authenticate(&key).await.unwrap().is_some());
    harness
        .engine
        .revoke_api_key(&harness.principal, &id)
        .await
        .unwrap();
    other_node.invalidate_api_keys();
    assert_eq!(other_node.authenticate(&key).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keys_use_is_recorded() {
    let harness = engine().await;
    let (key, id) = created_key(&harness, Role::Viewer).await;
    harness.engine.authenticate(&key).await.unwrap();
    eventually(Duration::from_secs(5), "last_used_at is set", || {
        let store = harness.engine.store().clone();
        let id = id.clone();
        async move {
            let record = store.api_key_by_id(&id).await.unwrap()?;
            record.last_used_at
        }
    })
    .await;
}
