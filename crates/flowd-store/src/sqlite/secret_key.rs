//! The secret key's check at open, and the resealing of every secret value under another key
//! (the first start with a key, which seals the values stored in clear, and a key rotation),
//! in one transaction.

use std::collections::BTreeMap;

use sqlx::{Connection, Row, SqliteConnection, SqlitePool};

use super::columns::{from_json, to_json};
use super::BEGIN_WRITE;
use crate::error::{Result, StoreError};
use crate::secrets::Secrets;

/// Checks that `secrets` opens the store's secret values, sealing them first if the store keeps
/// them in clear and `secrets` has a key.
pub(super) async fn settle(pool: &SqlitePool, secrets: &Secrets) -> Result<()> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT fingerprint FROM secret_key_fingerprint")
            .fetch_optional(pool)
            .await?;
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
        (None, Some(_)) => {}
    }
    let mut conn = pool.acquire().await?;
    secure_delete(&mut conn, true).await?;
    let sealed = reseal_from(&mut conn, &Secrets::clear(), secrets).await;
    secure_delete(&mut conn, false).await?;
    sealed?;
    truncate_wal(&mut conn).await
}

/// Reseals every secret value from `from`'s key to `to`'s, in one transaction: `from` must be
/// the key the store's values are sealed with.
pub(super) async fn rotate(pool: &SqlitePool, from: &Secrets, to: &Secrets) -> Result<()> {
    let mut conn = pool.acquire().await?;
    secure_delete(&mut conn, true).await?;
    let resealed = reseal_from(&mut conn, from, to).await;
    secure_delete(&mut conn, false).await?;
    resealed?;
    truncate_wal(&mut conn).await
}

/// In one transaction: checks that the store's values are sealed as `from` seals them (another
/// process may have sealed them meanwhile) and reseals them as `to` does.
async fn reseal_from(conn: &mut SqliteConnection, from: &Secrets, to: &Secrets) -> Result<()> {
    let mut tx = conn.begin_with(BEGIN_WRITE).await?;
    let stored = stored_fingerprint(&mut tx).await?;
    if stored.is_some() && stored.as_deref() == to.fingerprint() && from.fingerprint().is_none() {
        // Sealed by another process since it was read.
        tx.rollback().await?;
        return Ok(());
    }
    if stored.as_deref() != from.fingerprint() {
        tx.rollback().await?;
        return Err(StoreError::WrongSecretKey {
            stored: stored.unwrap_or_else(|| "none".into()),
            given: from.fingerprint().unwrap_or("none").to_string(),
        });
    }
    reseal(&mut tx, from, to).await?;
    tx.commit().await?;
    Ok(())
}

/// With `secure_delete` on, what a statement replaces or deletes is overwritten, so the values
/// resealed do not linger in the file's free space.
async fn secure_delete(conn: &mut SqliteConnection, on: bool) -> Result<()> {
    let pragma = if on {
        "PRAGMA secure_delete = ON"
    } else {
        "PRAGMA secure_delete = OFF"
    };
    sqlx::query(pragma).execute(conn).await?;
    Ok(())
}

/// Copies the WAL into the file and empties it, so that its frames written before a reseal do
/// not keep the values it replaced (nothing else reads at start or during a rotation; should
/// something, the WAL's frames are overwritten as commits go on).
async fn truncate_wal(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(conn)
        .await?;
    Ok(())
}

async fn stored_fingerprint(conn: &mut SqliteConnection) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT fingerprint FROM secret_key_fingerprint")
            .fetch_optional(conn)
            .await?,
    )
}

/// Opens every environment variable and setting with `from`, seals it with `to`, and records
/// `to`'s fingerprint.
async fn reseal(conn: &mut SqliteConnection, from: &Secrets, to: &Secrets) -> Result<()> {
    let workflows = sqlx::query("SELECT id, env FROM workflows")
        .fetch_all(&mut *conn)
        .await?;
    for row in &workflows {
        let id: String = row.try_get("id")?;
        let env: String = row.try_get("env")?;
        let env: BTreeMap<String, String> = from_json(&env, "workflows.env")?;
        let env = to.seal_env(&id, &from.open_env(&id, env)?);
        sqlx::query("UPDATE workflows SET env = ? WHERE id = ?")
            .bind(to_json(&env, "the environment variables")?)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
    }
    let settings = sqlx::query("SELECT workflow_id, key, value FROM workflow_settings")
        .fetch_all(&mut *conn)
        .await?;
    for row in &settings {
        let workflow_id: String = row.try_get("workflow_id")?;
        let key: String = row.try_get("key")?;
        let value: String = row.try_get("value")?;
        let value = from.open_setting(&workflow_id, &key, &value)?;
        sqlx::query("UPDATE workflow_settings SET value = ? WHERE workflow_id = ? AND key = ?")
            .bind(to.seal_setting(&workflow_id, &key, &value).to_string())
            .bind(&workflow_id)
            .bind(&key)
            .execute(&mut *conn)
            .await?;
    }
    // One request at a time: their bodies may be large.
    let requests: Vec<String> = sqlx::query_scalar("SELECT execution_id FROM stored_requests")
        .fetch_all(&mut *conn)
        .await?;
    for execution_id in &requests {
        let row =
            sqlx::query("SELECT workflow_id, payload FROM stored_requests WHERE execution_id = ?")
                .bind(execution_id)
                .fetch_one(&mut *conn)
                .await?;
        let workflow_id: String = row.try_get("workflow_id")?;
        let payload =
            from.reseal_request(to, &workflow_id, execution_id, row.try_get("payload")?)?;
        sqlx::query("UPDATE stored_requests SET payload = ? WHERE execution_id = ?")
            .bind(payload)
            .bind(execution_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM secret_key_fingerprint")
        .execute(&mut *conn)
        .await?;
    if let Some(fingerprint) = to.fingerprint() {
        sqlx::query("INSERT INTO secret_key_fingerprint (id, fingerprint) VALUES (1, ?)")
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
