//! `flowd migrate-store`: a single-node SQLite store copied into an empty PostgreSQL database,
//! every table, so that several nodes can take over from the one.
//!
//! - `tables`: the tables copied, in dependency order (the one place a new table is listed);
//! - `source`: the SQLite file, opened read-only and read as one snapshot, in batches;
//! - `target`: the PostgreSQL database: reached, migrated, checked empty, filled;
//! - `plan`: what is copied of a table (the source's columns, as the target's types say) and
//!   the batches that carry its rows;
//! - `columns`: how a column's values are checked and bound;
//! - `error`: what stops a copy.
//!
//! The copy is one PostgreSQL transaction, committed only once every table's row count in the
//! target equals the source's: the target ends up complete or as empty as it was. A thread reads
//! the source and hands batches (at most [`plan::MAX_BATCH_ROWS`] rows, about
//! [`plan::MAX_BATCH_BYTES`]) through a channel of two to the writer, so memory stays bounded
//! however many executions the store holds.

mod columns;
mod error;
mod plan;
mod source;
mod tables;
mod target;

use std::path::Path;

use tokio::sync::mpsc;

pub use self::error::MigrateError;
use self::plan::TablePlan;
use self::source::{Source, SourceTable};
pub use self::tables::TABLES;

/// Batches read ahead of the one being inserted.
const BATCHES_IN_FLIGHT: usize = 2;

/// A table copied and its row count, the same in both databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub rows: u64,
}

/// Copies the SQLite store at `source` (read as one snapshot: stop its server first) into the empty
/// PostgreSQL database at `target_url`, migrating that database to this binary's schema first.
/// Answers the tables copied, in [`TABLES`] order.
pub async fn sqlite_to_postgres(
    source: &Path,
    target_url: &str,
) -> Result<Vec<CopiedTable>, MigrateError> {
    let path = source.to_path_buf();
    let (source, source_tables) = tokio::task::spawn_blocking(move || {
        let source = Source::open(&path)?;
        let tables = source.tables()?;
        Ok::<_, MigrateError>((source, tables))
    })
    .await
    .map_err(|_| MigrateError::ReaderLost)??;
    let source_tables = listed_in_order(source.path(), source_tables)?;

    let pool = target::connect(target_url).await?;
    let mut transaction = pool.begin().await?;
    if let Some((table, rows)) = target::first_table_with_rows(&mut transaction).await? {
        return Err(MigrateError::TargetNotEmpty { table, rows });
    }
    let mut plans = Vec::with_capacity(TABLES.len());
    for (table, source_table) in TABLES.iter().zip(&source_tables) {
        let target_columns = target::columns(&mut transaction, table).await?;
        plans.push(TablePlan::new(
            table,
            &source_table.columns,
            &target_columns,
        )?);
    }

    let (sender, mut batches) = mpsc::channel(BATCHES_IN_FLIGHT);
    let reader_plans = plans.clone();
    let reader = std::thread::Builder::new()
        .name("migrate-store-reader".to_string())
        .spawn(move || source.stream(&reader_plans, &sender))
        .map_err(|_| MigrateError::ReaderLost)?;
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let plan = &plans[batch.table];
        target::insert(&mut transaction, plan, batch).await?;
    }
    tokio::task::spawn_blocking(move || reader.join())
        .await
        .map_err(|_| MigrateError::ReaderLost)?
        .map_err(|_| MigrateError::ReaderLost)?;

    let mut copied = Vec::with_capacity(TABLES.len());
    for (table, source_table) in TABLES.iter().zip(&source_tables) {
        let in_target = target::count(&mut transaction, table).await?.unsigned_abs();
        if in_target != source_table.rows {
            return Err(MigrateError::CountMismatch {
                table: table.to_string(),
                in_source: source_table.rows,
                in_target,
            });
        }
        copied.push(CopiedTable {
            table,
            rows: in_target,
        });
    }
    transaction.commit().await?;
    pool.close().await;
    Ok(copied)
}

/// The source's tables in [`TABLES`] order; a table of the source not in the list, or one of
/// the list the source lacks, is refused.
fn listed_in_order(
    path: &Path,
    mut tables: Vec<SourceTable>,
) -> Result<Vec<SourceTable>, MigrateError> {
    if let Some(unlisted) = tables
        .iter()
        .find(|table| !TABLES.contains(&table.name.as_str()))
    {
        return Err(MigrateError::UnlistedTable(unlisted.name.clone()));
    }
    let mut ordered = Vec::with_capacity(TABLES.len());
    for name in TABLES {
        let position = tables
            .iter()
            .position(|table| table.name == *name)
            .ok_or_else(|| MigrateError::NotAStore {
                path: path.to_path_buf(),
                reason: format!("it has no table {name}"),
            })?;
        ordered.push(tables.swap_remove(position));
    }
    Ok(ordered)
}
