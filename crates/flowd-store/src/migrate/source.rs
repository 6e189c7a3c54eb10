//! The SQLite store being copied, opened read-only and read in one transaction: one snapshot of
//! the store, whatever happens to the file meanwhile. A store whose write-ahead log is gone (all
//! of it in the database file) is opened immutable: SQLite then takes no lock and creates no file
//! beside it. One whose log is there (a server stopped without checkpointing it, or still
//! running) is read with its log. The server must be stopped: what it writes after the snapshot
//! is not copied.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

use super::error::MigrateError;
use super::plan::{quoted, Batch, TablePlan};
use super::tables::is_bookkeeping;

/// A table of the source: its columns, in their order, and how many rows it has.
#[derive(Debug)]
pub(super) struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

pub(super) struct Source {
    path: PathBuf,
    connection: Connection,
}

impl Source {
    /// Opens the store at `path` for reading, refusing a missing file, one a server has open,
    /// one that is not a flowd store and one whose schema is not this binary's.
    pub(super) fn open(path: &Path) -> Result<Source, MigrateError> {
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(MigrateError::SourceMissing(path.to_path_buf()))
            }
            Err(err) => {
                return Err(MigrateError::NotAStore {
                    path: path.to_path_buf(),
                    reason: err.to_string(),
                })
            }
            Ok(metadata) if !metadata.is_file() => {
                return Err(MigrateError::NotAStore {
                    path: path.to_path_buf(),
                    reason: "not a file".to_string(),
                })
            }
            Ok(_) => {}
        }
        let immutable = if write_ahead_log(path).exists() {
            ""
        } else {
            "&immutable=1"
        };
        let uri = format!("{}?mode=ro{immutable}", crate::sqlite::file_uri(path));
        let connection = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| MigrateError::Source {
            path: path.to_path_buf(),
            source,
        })?;
        let source = Source {
            path: path.to_path_buf(),
            connection,
        };
        source.check_schema_version()?;
        // Held until the source is dropped: every read below sees the same snapshot.
        source
            .connection
            .execute_batch("BEGIN")
            .map_err(|err| source.error(err))?;
        Ok(source)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> MigrateError {
        MigrateError::Source {
            path: self.path.clone(),
            source,
        }
    }

    fn check_schema_version(&self) -> Result<(), MigrateError> {
        let migrated: bool = self
            .connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
                 AND name = '_sqlx_migrations')",
                [],
                |row| row.get(0),
            )
            .map_err(|err| MigrateError::NotAStore {
                path: self.path.clone(),
                reason: err.to_string(),
            })?;
        let database: Option<i64> = if migrated {
            self.connection
                .query_row(
                    "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
                    [],
                    |row| row.get(0),
                )
                .map_err(|err| self.error(err))?
        } else {
            None
        };
        let Some(database) = database else {
            return Err(MigrateError::NotAStore {
                path: self.path.clone(),
                reason: "it has no schema version".to_string(),
            });
        };
        let binary = crate::sqlite::schema_version();
        let path = self.path.clone();
        match database.cmp(&binary) {
            std::cmp::Ordering::Greater => Err(MigrateError::SourceSchemaTooNew {
                path,
                database,
                binary,
            }),
            std::cmp::Ordering::Less => Err(MigrateError::SourceSchemaTooOld {
                path,
                database,
                binary,
            }),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// The tables holding data, with their columns and row counts.
    pub(super) fn tables(&self) -> Result<Vec<SourceTable>, MigrateError> {
        let mut statement = self
            .connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(|err| self.error(err))?;
        let names = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
            .map_err(|err| self.error(err))?;
        let mut tables = Vec::new();
        for name in names.into_iter().filter(|name| !is_bookkeeping(name)) {
            let columns = self.columns(&name)?;
            let rows: i64 = self
                .connection
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}", quoted(&name)),
                    [],
                    |row| row.get(0),
                )
                .map_err(|err| self.error(err))?;
            tables.push(SourceTable {
                name,
                columns,
                rows: rows.unsigned_abs(),
            });
        }
        Ok(tables)
    }

    fn columns(&self, table: &str) -> Result<Vec<String>, MigrateError> {
        let mut statement = self
            .connection
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(|err| self.error(err))?;
        statement
            .query_map([table], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
            .map_err(|err| self.error(err))
    }

    /// Reads the tables of `plans`, in order, sending their rows in batches (a bounded channel:
    /// the reader waits for the writer). Stops at the first error, which it sends, or when the
    /// receiver is gone. Runs on a thread of its own.
    pub(super) fn stream(
        &self,
        plans: &[TablePlan],
        batches: &mpsc::Sender<Result<Batch, MigrateError>>,
    ) {
        for (index, plan) in plans.iter().enumerate() {
            match self.stream_table(index, plan, batches) {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    let _ = batches.blocking_send(Err(err));
                    return;
                }
            }
        }
    }

    /// One table's rows, in rowid order (or by primary key: [`super::tables::row_order`]); `false`
    /// when the receiver is gone.
    fn stream_table(
        &self,
        index: usize,
        plan: &TablePlan,
        batches: &mpsc::Sender<Result<Batch, MigrateError>>,
    ) -> Result<bool, MigrateError> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            plan.column_list(),
            quoted(plan.table),
            super::tables::row_order(plan.table)
        );
        let mut statement = self
            .connection
            .prepare(&sql)
            .map_err(|err| self.error(err))?;
        let mut rows = statement.query([]).map_err(|err| self.error(err))?;
        let mut batch = Batch::new(index, plan);
        let mut row_number = 0u64;
        while let Some(row) = rows.next().map_err(|err| self.error(err))? {
            row_number += 1;
            for (position, column) in plan.columns.iter().enumerate() {
                let value = row.get_ref(position).map_err(|err| self.error(err))?;
                batch.bytes +=
                    batch.columns[position]
                        .push(column.kind, value)
                        .map_err(|misfit| MigrateError::UnexpectedValue {
                            table: plan.table.to_string(),
                            column: column.name.clone(),
                            row: row_number,
                            found: misfit.found,
                            expected: misfit.expected,
                        })?;
            }
            batch.rows += 1;
            if batch.is_full() {
                let full = std::mem::replace(&mut batch, Batch::new(index, plan));
                if batches.blocking_send(Ok(full)).is_err() {
                    return Ok(false);
                }
            }
        }
        if batch.rows > 0 && batches.blocking_send(Ok(batch)).is_err() {
            return Ok(false);
        }
        Ok(true)
    }
}

/// The store's write-ahead log, `<path>-wal`.
fn write_ahead_log(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}
