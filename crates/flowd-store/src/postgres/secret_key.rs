//! The secret key's check at open, and the resealing of every secret value under another key
//! (the first start with a key, which seals the values stored in clear, and a key rotation),
//! in one transaction that holds the fingerprint's table locked, so that nodes starting at once
//! seal the values once.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool, Row};

use super::rows::from_json;
use super::to_json;
use crate::error::{Result, StoreError};
use crate::secrets::Secrets;

/// Checks that `secrets` opens the store's secret values, sealing them first if the store keeps
/// them in clear and `secrets` has a key.
pub(super) async fn settle(pool: &PgPool, secrets: &Secrets) -> Result<()> {
    let mut tx = pool.begin().await?;
    let stored = locked_fingerprint(&mut tx).await?;
    match (stored, secrets.fingerprint()) {
        (None, None) => return Ok(()),
        (Some(stored), Some(given)) if stored == given => return Ok(()),
        (Some(stored), Some(given)) => {
            return Err(StoreError::WrongSecretKey {
                stored,
                given: given.to_string(),
            })
        }
        (Some(stored), None) => return Err(StoreError::SecretKeyMissing { stored }),
        (None, Some(_)) => reseal(&mut tx, &Secrets::clear(), secrets).await?,
    }
    tx.commit().await?;
    Ok(())
}

/// Reseals every secret value from `from`'s key to `to`'s, in one transaction: `from` must be
/// the key the store's values are sealed with.
pub(super) async fn rotate(pool: &PgPool, from: &Secrets, to: &Secrets) -> Result<()> {
    let mut tx = pool.begin().await?;
    let stored = locked_fingerprint(&mut tx).await?;
    if stored.as_deref() != from.fingerprint() {
        return Err(StoreError::WrongSecretKey {
            stored: stored.unwrap_or_else(|| "none".into()),
            given: from.fingerprint().unwrap_or("none").to_string(),
        });
    }
    reseal(&mut tx, from, to).await?;
    tx.commit().await?;
    Ok(())
}

/// The stored fingerprint, with the table locked against other transactions' writes until the
/// caller's ends.
async fn locked_fingerprint(conn: &mut PgConnection) -> Result<Option<String>> {
    sqlx::query("LOCK TABLE secret_key_fingerprint IN EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT fingerprint FROM secret_key_fingerprint")
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Opens every environment variable and setting with `from`, seals it with `to`, and records
/// `to`'s fingerprint.
async fn reseal(conn: &mut PgConnection, from: &Secrets, to: &Secrets) -> Result<()> {
    let workflows = sqlx::query("SELECT id, env::TEXT AS env FROM workflows FOR UPDATE")
        .fetch_all(&mut *conn)
        .await?;
    for row in &workflows {
        let id: String = row.try_get("id")?;
        let env: String = row.try_get("env")?;
        let env: BTreeMap<String, String> = from_json(&env, "workflows.env")?;
        let env = to.seal_env(&id, &from.open_env(&id, env)?);
        sqlx::query("UPDATE workflows SET env = $1::JSON WHERE id = $2")
            .bind(to_json(&env, "the environment variables")?)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
    }
    let settings = sqlx::query(
        "SELECT workflow_id, key, value::TEXT AS value FROM workflow_settings FOR UPDATE",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &settings {
        let workflow_id: String = row.try_get("workflow_id")?;
        let key: String = row.try_get("key")?;
        let value: String = row.try_get("value")?;
        let value = from.open_setting(&workflow_id, &key, &value)?;
        sqlx::query(
            "UPDATE workflow_settings SET value = $1::JSON WHERE workflow_id = $2 AND key = $3",
        )
        .bind(to.seal_setting(&workflow_id, &key, &value).to_string())
        .bind(&workflow_id)
        .bind(&key)
        .execute(&mut *conn)
        .await?;
    }
    // One request at a time: their bodies may be large.
    let requests: Vec<String> =
        sqlx::query_scalar("SELECT execution_id FROM stored_requests FOR UPDATE")
            .fetch_all(&mut *conn)
            .await?;
    for execution_id in &requests {
        let row =
            sqlx::query("SELECT workflow_id, payload FROM stored_requests WHERE execution_id = $1")
                .bind(execution_id)
                .fetch_one(&mut *conn)
                .await?;
        let workflow_id: String = row.try_get("workflow_id")?;
        let payload =
            from.reseal_request(to, &workflow_id, execution_id, row.try_get("payload")?)?;
        sqlx::query("UPDATE stored_requests SET payload = $1 WHERE execution_id = $2")
            .bind(payload)
            .bind(execution_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM secret_key_fingerprint")
        .execute(&mut *conn)
        .await?;
    if let Some(fingerprint) = to.fingerprint() {
        sqlx::query("INSERT INTO secret_key_fingerprint (id, fingerprint) VALUES (1, $1)")
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
