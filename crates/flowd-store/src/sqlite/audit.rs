//! The audit log's rows on SQLite: written inside the transaction of the change they record
//! (sqlx for the API's writes; the group commit's use [`INSERT_AUDIT`] with rusqlite), read back with their filters.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::error::{Result, StoreError};
use crate::model::{AuditEntry, AuditQuery};

const AUDIT_COLUMNS: &str = "id, at, actor_id, actor_name, action, team_id, team_name, \
     workflow_id, workflow_name, summary";
pub(super) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (id, at, actor_id, actor_name, action, team_id, \
     team_name, workflow_id, workflow_name, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// At most this many entries a listing returns…
const MAX_LIMIT: u32 = 1000;
/// …and this many when the query asks for 0.
const DEFAULT_LIMIT: u32 = 50;

/// Appends `entries` on `conn`, in the caller's transaction.
pub(super) async fn insert_entries<'a>(
    conn: &mut SqliteConnection,
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<()> {
    for entry in entries {
        sqlx::query(INSERT_AUDIT)
            .bind(&entry.id)
            .bind(entry.at)
            .bind(&entry.actor_id)
            .bind(&entry.actor_name)
            .bind(entry.action.as_str())
            .bind(&entry.team_id)
            .bind(&entry.team_name)
            .bind(&entry.workflow_id)
            .bind(&entry.workflow_name)
            .bind(&entry.summary)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The entries `query` selects, newest first.
pub(super) async fn select(
    conn: &mut SqliteConnection,
    query: &AuditQuery,
) -> Result<Vec<AuditEntry>> {
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        limit => limit.min(MAX_LIMIT),
    };
    let mut sql =
        QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"));
    if let Some(team_id) = &query.team_id {
        sql.push(" AND team_id = ").push_bind(team_id.as_str());
    }
    if let Some(team_name) = &query.team_name {
        sql.push(" AND team_name = ").push_bind(team_name.as_str());
    }
    if let Some(workflow) = &query.workflow {
        sql.push(" AND (workflow_id = ")
            .push_bind(workflow.as_str())
            .push(" OR workflow_name = ")
            .push_bind(workflow.as_str())
            .push(")");
    }
    if let Some(actor) = &query.actor {
        sql.push(" AND (actor_id = ")
            .push_bind(actor.as_str())
            .push(" OR actor_name = ")
            .push_bind(actor.as_str())
            .push(")");
    }
    if let Some(since) = query.since {
        sql.push(" AND at >= ").push_bind(since);
    }
    if let Some(before_id) = &query.before_id {
        sql.push(" AND id < ").push_bind(before_id.as_str());
    }
    sql.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit));
    sql.build()
        .fetch_all(conn)
        .await?
        .iter()
        .map(entry_from_row)
        .collect()
}

fn entry_from_row(row: &SqliteRow) -> Result<AuditEntry> {
    let action: String = row.try_get("action")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor_name: row.try_get("actor_name")?,
        action: action
            .parse()
            .map_err(|err| StoreError::Corrupt(format!("audit_log.action: {err}")))?,
        team_id: row.try_get("team_id")?,
        team_name: row.try_get("team_name")?,
        workflow_id: row.try_get("workflow_id")?,
        workflow_name: row.try_get("workflow_name")?,
        summary: row.try_get("summary")?,
    })
}
