//! Failure alerts on PostgreSQL: the rate limit's claim and the deliveries' records (see
//! [`crate::Store::claim_alert`]).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::{Result, StoreError};
use crate::sqlx_error::is_foreign_key_violation;
use crate::{AlertClaim, AlertDelivery};

/// Takes the right to send when the last alert sent is at least the interval old (or there is
/// none); the suppressed count moves into `reported_suppressed`, which the statement answers.
const CLAIM_SEND: &str = "INSERT INTO alert_state \
         (workflow_id, last_sent_at, suppressed, reported_suppressed) VALUES ($1, $2, 0, 0) \
     ON CONFLICT (workflow_id) DO UPDATE SET \
         last_sent_at = excluded.last_sent_at, \
         reported_suppressed = alert_state.suppressed, \
         suppressed = 0 \
     WHERE alert_state.last_sent_at <= $2 - $3 \
     RETURNING reported_suppressed";

const COUNT_SUPPRESSED: &str =
    "UPDATE alert_state SET suppressed = suppressed + 1 WHERE workflow_id = $1";

const COLUMNS: &str = "id, workflow_id, execution_id, at, status_code, error, attempts, suppressed";

/// A delivery recorded again (its next attempt) keeps its id, workflow and execution.
const UPDATE_ATTEMPT: &str = "ON CONFLICT (id) DO UPDATE SET at = excluded.at, \
     status_code = excluded.status_code, error = excluded.error, attempts = excluded.attempts, \
     suppressed = excluded.suppressed";

/// At most this many deliveries a listing returns.
const MAX_LIMIT: u32 = 1000;

pub(super) async fn claim(
    writer: &PgPool,
    workflow_id: &str,
    now: i64,
    min_interval_ms: i64,
) -> Result<AlertClaim> {
    let reported: Option<i64> = sqlx::query_scalar(CLAIM_SEND)
        .bind(workflow_id)
        .bind(now)
        .bind(min_interval_ms)
        .fetch_optional(writer)
        .await
        .map_err(|err| not_found_or(err, workflow_id))?;
    if let Some(reported) = reported {
        return Ok(AlertClaim::Send {
            suppressed: u64::try_from(reported).unwrap_or_default(),
        });
    }
    sqlx::query(COUNT_SUPPRESSED)
        .bind(workflow_id)
        .execute(writer)
        .await?;
    Ok(AlertClaim::Suppressed)
}

pub(super) async fn record(writer: &PgPool, delivery: &AlertDelivery) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO alert_deliveries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         {UPDATE_ATTEMPT}"
    ))
    .bind(&delivery.id)
    .bind(&delivery.workflow_id)
    .bind(&delivery.execution_id)
    .bind(delivery.at)
    .bind(delivery.status_code.map(i32::from))
    .bind(&delivery.error)
    .bind(i32::try_from(delivery.attempts).unwrap_or(i32::MAX))
    .bind(i64::try_from(delivery.suppressed).unwrap_or(i64::MAX))
    .execute(writer)
    .await
    .map_err(|err| not_found_or(err, &delivery.workflow_id))?;
    Ok(())
}

pub(super) async fn list(
    pool: &PgPool,
    workflow_id: &str,
    limit: u32,
) -> Result<Vec<AlertDelivery>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM alert_deliveries WHERE workflow_id = $1 \
         ORDER BY at DESC, id DESC LIMIT $2"
    ))
    .bind(workflow_id)
    .bind(i64::from(limit.min(MAX_LIMIT)))
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

fn delivery_from_row(row: &PgRow) -> Result<AlertDelivery> {
    Ok(AlertDelivery {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        execution_id: row.try_get("execution_id")?,
        at: row.try_get("at")?,
        status_code: row
            .try_get::<Option<i32>, _>("status_code")?
            .map(|code| in_range(i64::from(code), "status_code"))
            .transpose()?,
        error: row.try_get("error")?,
        attempts: in_range(i64::from(row.try_get::<i32, _>("attempts")?), "attempts")?,
        suppressed: in_range(row.try_get("suppressed")?, "suppressed")?,
    })
}

fn in_range<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| {
        StoreError::Corrupt(format!(
            "alert_deliveries.{column} = {value} is out of range"
        ))
    })
}

fn not_found_or(err: sqlx::Error, workflow_id: &str) -> StoreError {
    if is_foreign_key_violation(&err) {
        StoreError::workflow_not_found(workflow_id)
    } else {
        err.into()
    }
}
