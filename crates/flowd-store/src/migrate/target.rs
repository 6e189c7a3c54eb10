//! The PostgreSQL database copied into: reached, migrated to this binary's schema, checked
//! empty, then filled a batch per statement inside one transaction.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::columns::Kind;
use super::error::MigrateError;
use super::plan::{quoted, Batch, TablePlan, TargetColumn};
use super::tables::is_bookkeeping;
use crate::DatabaseUrl;

/// Connects to the database at `url` and brings its schema up to date (a database migrated by
/// a newer flowd is refused). One connection: the copy is one transaction.
pub(super) async fn connect(url: &str) -> Result<PgPool, MigrateError> {
    let shown = DatabaseUrl::Postgres(url.to_string()).to_string();
    let options = PgConnectOptions::from_str(url)
        .map_err(|err| MigrateError::TargetUrl(shown.clone(), err))?
        .application_name("flowd migrate-store");
    // One attempt first: the pool would retry an unreachable server until its timeout.
    PgConnection::connect_with(&options)
        .await
        .map_err(|err| MigrateError::TargetUnreachable(shown.clone(), err.into()))?
        .close()
        .await?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|err| MigrateError::TargetUnreachable(shown, err.into()))?;
    crate::postgres::schema::migrate(&pool)
        .await
        .map_err(MigrateError::TargetSchema)?;
    Ok(pool)
}

/// The first table holding a row, with its row count (`None`: the database is empty).
pub(super) async fn first_table_with_rows(
    connection: &mut PgConnection,
) -> Result<Option<(String, i64)>, MigrateError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::TEXT FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
         ORDER BY table_name",
    )
    .fetch_all(&mut *connection)
    .await?;
    for table in tables.into_iter().filter(|table| !is_bookkeeping(table)) {
        let rows = count(connection, &table).await?;
        if rows > 0 {
            return Ok(Some((table, rows)));
        }
    }
    Ok(None)
}

pub(super) async fn count(connection: &mut PgConnection, table: &str) -> Result<i64, MigrateError> {
    Ok(
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(table)))
            .fetch_one(connection)
            .await?,
    )
}

/// The columns of `table`, in their order (none: there is no such table).
pub(super) async fn columns(
    connection: &mut PgConnection,
    table: &str,
) -> Result<Vec<TargetColumn>, MigrateError> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT column_name::TEXT, data_type::TEXT, \
             is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO' \
             AND is_generated = 'NEVER' \
         FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 \
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, data_type, required)| TargetColumn {
            name,
            data_type,
            required,
        })
        .collect())
}

/// Inserts a batch with one statement: a parameter per column (an array), unnested in row
/// order, so that a generated column (the settings' `position`) numbers rows as the source
/// ordered them.
pub(super) async fn insert(
    connection: &mut PgConnection,
    plan: &TablePlan,
    batch: Batch,
) -> Result<(), MigrateError> {
    let sql = insert_statement(plan);
    let mut query = sqlx::query(&sql);
    for values in batch.columns {
        query = values.bind(query);
    }
    query.execute(connection).await?;
    Ok(())
}

fn insert_statement(plan: &TablePlan) -> String {
    let mut arrays = Vec::new();
    let mut aliases = Vec::new();
    let mut selected = Vec::new();
    for (index, column) in plan.columns.iter().enumerate() {
        let number = index + 1;
        arrays.push(format!("${number}::{}", column.kind.array_type()));
        aliases.push(format!("v{number}"));
        selected.push(match column.kind {
            Kind::Json => format!("v{number}::{}", column.data_type),
            _ => format!("v{number}"),
        });
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) WITH ORDINALITY AS r ({}, n) ORDER BY n",
        quoted(plan.table),
        plan.column_list(),
        selected.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::plan::PlannedColumn;

    #[test]
    fn a_batch_is_inserted_from_one_array_per_column_in_row_order() {
        let plan = TablePlan {
            table: "executions",
            columns: vec![
                PlannedColumn {
                    name: "trigger".to_string(),
                    kind: Kind::Text,
                    data_type: "text".to_string(),
                },
                PlannedColumn {
                    name: "warnings".to_string(),
                    kind: Kind::Json,
                    data_type: "json".to_string(),
                },
            ],
        };
        assert_eq!(
            insert_statement(&plan),
            "INSERT INTO \"executions\" (\"trigger\", \"warnings\") SELECT v1, v2::json \
             FROM UNNEST($1::TEXT[], $2::TEXT[]) WITH ORDINALITY AS r (v1, v2, n) ORDER BY n"
        );
    }
}
