//! How a column's values travel from SQLite to PostgreSQL: the target column's type decides
//! what a source value must be and how a batch of them is bound (one array per column).

use rusqlite::types::ValueRef;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;

/// What a column holds, as the copy carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Integer,
    /// SQLite's 0/1 integers.
    Boolean,
    Real,
    /// JSON text, cast to the column's `json` or `jsonb` on insert.
    Json,
    /// UTF-8 text (or a blob) stored as bytes: PostgreSQL's text types cannot hold U+0000.
    Bytes,
}

impl Kind {
    /// The kind of a PostgreSQL column whose `information_schema` type is `data_type`, `None`
    /// for a type the copy does not carry.
    pub(super) fn of_postgres_type(data_type: &str) -> Option<Kind> {
        Some(match data_type {
            "text" | "character varying" => Kind::Text,
            "bigint" | "integer" | "smallint" => Kind::Integer,
            "boolean" => Kind::Boolean,
            "double precision" | "real" => Kind::Real,
            "json" | "jsonb" => Kind::Json,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }

    /// The array type a batch of this kind is bound as.
    pub(super) fn array_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::Json => "TEXT[]",
            Kind::Integer => "BIGINT[]",
            Kind::Boolean => "BOOLEAN[]",
            Kind::Real => "FLOAT8[]",
            Kind::Bytes => "BYTEA[]",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Text | Kind::Json => "text",
            Kind::Integer | Kind::Boolean => "an integer",
            Kind::Real => "a number",
            Kind::Bytes => "text or a blob",
        }
    }
}

/// A source value that does not fit its column: what was found and what was expected.
#[derive(Debug)]
pub(super) struct Misfit {
    pub found: &'static str,
    pub expected: &'static str,
}

/// One column's values of a batch of rows.
#[derive(Debug)]
pub(super) enum Values {
    Text(Vec<Option<String>>),
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Real(Vec<Option<f64>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Values {
    pub(super) fn new(kind: Kind) -> Values {
        match kind {
            Kind::Text | Kind::Json => Values::Text(Vec::new()),
            Kind::Integer => Values::Integer(Vec::new()),
            Kind::Boolean => Values::Boolean(Vec::new()),
            Kind::Real => Values::Real(Vec::new()),
            Kind::Bytes => Values::Bytes(Vec::new()),
        }
    }

    /// Appends `value`, answering how many bytes it holds (for the batch's bound).
    pub(super) fn push(&mut self, kind: Kind, value: ValueRef<'_>) -> Result<usize, Misfit> {
        let misfit = || Misfit {
            found: found(value),
            expected: kind.expected(),
        };
        match (self, value) {
            (Values::Text(values), ValueRef::Null) => values.push(None),
            (Values::Integer(values), ValueRef::Null) => values.push(None),
            (Values::Boolean(values), ValueRef::Null) => values.push(None),
            (Values::Real(values), ValueRef::Null) => values.push(None),
            (Values::Bytes(values), ValueRef::Null) => values.push(None),
            (Values::Text(values), ValueRef::Text(text)) => {
                let text = std::str::from_utf8(text).map_err(|_| Misfit {
                    found: "bytes that are not UTF-8",
                    expected: kind.expected(),
                })?;
                values.push(Some(text.to_string()));
                return Ok(text.len());
            }
            (Values::Integer(values), ValueRef::Integer(number)) => values.push(Some(number)),
            (Values::Boolean(values), ValueRef::Integer(number)) => values.push(Some(number != 0)),
            (Values::Real(values), ValueRef::Real(number)) => values.push(Some(number)),
            // An integral value in a REAL column may be stored as an integer.
            (Values::Real(values), ValueRef::Integer(number)) => values.push(Some(number as f64)),
            (Values::Bytes(values), ValueRef::Text(bytes) | ValueRef::Blob(bytes)) => {
                values.push(Some(bytes.to_vec()));
                return Ok(bytes.len());
            }
            _ => return Err(misfit()),
        }
        Ok(8)
    }

    /// Binds the values as the next parameter of `query` (one array).
    pub(super) fn bind(
        self,
        query: Query<'_, Postgres, PgArguments>,
    ) -> Query<'_, Postgres, PgArguments> {
        match self {
            Values::Text(values) => query.bind(values),
            Values::Integer(values) => query.bind(values),
            Values::Boolean(values) => query.bind(values),
            Values::Real(values) => query.bind(values),
            Values::Bytes(values) => query.bind(values),
        }
    }
}

/// What kind of SQLite value `value` is, for messages.
fn found(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real number",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}
