//! Teams and API keys.

use crate::common::*;
use flowd_store::{ApiKeyRecord, Store};

pub async fn creates_and_reads_back_a_team(store: &dyn Store) {
    let team = team("acme");
    store.create_team(&team).await.unwrap();
    assert_eq!(
        store.team_by_id(&team.id).await.unwrap(),
        Some(team.clone())
    );
    assert_eq!(store.team_by_name("acme").await.unwrap(), Some(team));
}

pub async fn unknown_team_reads_as_none(store: &dyn Store) {
    given_team(store, "acme").await;
    assert_eq!(store.team_by_id(&new_id()).await.unwrap(), None);
    assert_eq!(store.team_by_name("other").await.unwrap(), None);
}

pub async fn team_name_taken_is_a_conflict(store: &dyn Store) {
    given_team(store, "acme").await;
    let message = assert_conflict(store.create_team(&team("acme")).await);
    assert!(message.contains("\"acme\""), "{message}");
    assert_eq!(store.count_teams().await.unwrap(), 1);
}

pub async fn counts_teams(store: &dyn Store) {
    assert_eq!(store.count_teams().await.unwrap(), 0);
    given_team(store, "a").await;
    given_team(store, "b").await;
    assert_eq!(store.count_teams().await.unwrap(), 2);
}

pub async fn creates_and_finds_an_api_key_by_hash(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    let other = ApiKeyRecord {
        is_admin: false,
        name: "other".to_string(),
        ..api_key(&team.id, &"cd".repeat(32))
    };
    store.create_api_key(&key).await.unwrap();
    store.create_api_key(&other).await.unwrap();
    assert_eq!(
        store.api_key_by_hash(&key.key_hash).await.unwrap(),
        Some(key)
    );
    assert_eq!(
        store.api_key_by_hash(&other.key_hash).await.unwrap(),
        Some(other)
    );
}

pub async fn counts_the_admin_keys_of_a_team(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let other_team = given_team(store, "other").await;
    assert_eq!(store.count_admin_keys(&team.id).await.unwrap(), 0);
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    store
        .create_api_key(&ApiKeyRecord {
            is_admin: false,
            ..api_key(&team.id, &"cd".repeat(32))
        })
        .await
        .unwrap();
    assert_eq!(store.count_admin_keys(&team.id).await.unwrap(), 1);
    assert_eq!(store.count_admin_keys(&other_team.id).await.unwrap(), 0);
}

pub async fn unknown_api_key_hash_reads_as_none(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    assert_eq!(store.api_key_by_hash(&"ef".repeat(32)).await.unwrap(), None);
}

pub async fn api_key_hash_taken_is_a_conflict(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    assert_conflict(
        store
            .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
            .await,
    );
}

pub async fn api_key_of_unknown_team_is_not_found(store: &dyn Store) {
    assert_not_found(
        store
            .create_api_key(&api_key(&new_id(), &"ab".repeat(32)))
            .await,
    );
}
