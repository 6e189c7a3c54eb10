//! What is copied of each table: the source's columns, each carried as its column in the target
//! says, and the batches of rows that travel from the one to the other.

use super::columns::{Kind, Values};
use super::error::MigrateError;

/// At most this many rows…
pub(super) const MAX_BATCH_ROWS: usize = 1000;
/// …and about this many bytes of values per batch: with the few batches in flight, this bounds
/// the copy's memory whatever the size of the store.
pub(super) const MAX_BATCH_BYTES: usize = 4 << 20;

/// A column of the target database, as `information_schema` describes it.
#[derive(Debug, Clone)]
pub(super) struct TargetColumn {
    pub name: String,
    pub data_type: String,
    /// NOT NULL with no default, not generated: a row cannot be inserted without it.
    pub required: bool,
}

/// A column copied: its name (the same on both sides) and how its values travel.
#[derive(Debug, Clone)]
pub(super) struct PlannedColumn {
    pub name: String,
    pub kind: Kind,
    /// The target's type, for the cast of JSON text.
    pub data_type: String,
}

/// How one table is copied.
#[derive(Debug, Clone)]
pub(super) struct TablePlan {
    pub table: &'static str,
    pub columns: Vec<PlannedColumn>,
}

impl TablePlan {
    /// Every column of the source, each found in the target with a type the copy carries; the
    /// target's columns the source lacks must have a default (or be generated or nullable).
    pub(super) fn new(
        table: &'static str,
        source_columns: &[String],
        target_columns: &[TargetColumn],
    ) -> Result<TablePlan, MigrateError> {
        let mut columns = Vec::with_capacity(source_columns.len());
        for name in source_columns {
            let target = target_columns
                .iter()
                .find(|column| &column.name == name)
                .ok_or_else(|| MigrateError::ColumnMissingInTarget {
                    table: table.to_string(),
                    column: name.clone(),
                })?;
            let kind = Kind::of_postgres_type(&target.data_type).ok_or_else(|| {
                MigrateError::UnsupportedType {
                    table: table.to_string(),
                    column: name.clone(),
                    data_type: target.data_type.clone(),
                }
            })?;
            columns.push(PlannedColumn {
                name: name.clone(),
                kind,
                data_type: target.data_type.clone(),
            });
        }
        if let Some(missing) = target_columns
            .iter()
            .find(|column| column.required && !source_columns.contains(&column.name))
        {
            return Err(MigrateError::ColumnMissingInSource {
                table: table.to_string(),
                column: missing.name.clone(),
            });
        }
        Ok(TablePlan { table, columns })
    }

    /// The columns, quoted and comma-separated.
    pub(super) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|column| quoted(&column.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Rows of one table, column by column.
#[derive(Debug)]
pub(super) struct Batch {
    /// The index of its table's plan.
    pub table: usize,
    pub columns: Vec<Values>,
    pub rows: usize,
    pub bytes: usize,
}

impl Batch {
    pub(super) fn new(table: usize, plan: &TablePlan) -> Batch {
        Batch {
            table,
            columns: plan
                .columns
                .iter()
                .map(|column| Values::new(column.kind))
                .collect(),
            rows: 0,
            bytes: 0,
        }
    }

    pub(super) fn is_full(&self) -> bool {
        self.rows >= MAX_BATCH_ROWS || self.bytes >= MAX_BATCH_BYTES
    }
}

/// `name` as an SQL identifier (both dialects quote with double quotes).
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str, required: bool) -> TargetColumn {
        TargetColumn {
            name: name.to_string(),
            data_type: data_type.to_string(),
            required,
        }
    }

    #[test]
    fn each_source_column_is_carried_as_its_target_type_says() {
        let plan = TablePlan::new(
            "t",
            &["id".to_string(), "is_admin".to_string(), "logs".to_string()],
            &[
                column("id", "text", true),
                column("is_admin", "boolean", true),
                column("logs", "bytea", true),
            ],
        )
        .unwrap();
        let kinds: Vec<Kind> = plan.columns.iter().map(|column| column.kind).collect();
        assert_eq!(kinds, [Kind::Text, Kind::Boolean, Kind::Bytes]);
        assert_eq!(plan.column_list(), r#""id", "is_admin", "logs""#);
    }

    #[test]
    fn a_source_column_the_target_lacks_is_refused() {
        let error = TablePlan::new("t", &["extra".to_string()], &[]).unwrap_err();
        assert!(
            matches!(error, MigrateError::ColumnMissingInTarget { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_target_column_without_default_the_source_lacks_is_refused() {
        let error = TablePlan::new("t", &[], &[column("needed", "text", true)]).unwrap_err();
        assert!(
            matches!(error, MigrateError::ColumnMissingInSource { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_target_column_with_a_default_may_be_left_to_it() {
        let plan = TablePlan::new("t", &[], &[column("position", "bigint", false)]).unwrap();
        assert!(plan.columns.is_empty());
    }

    #[test]
    fn a_type_the_copy_does_not_carry_is_refused() {
        let error = TablePlan::new("t", &["at".to_string()], &[column("at", "timestamp", true)])
            .unwrap_err();
        assert!(
            matches!(error, MigrateError::UnsupportedType { .. }),
            "{error}"
        );
    }
}
