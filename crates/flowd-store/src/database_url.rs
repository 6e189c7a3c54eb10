//! Which database a store opens, as `flowd serve --database` takes it: `sqlite:PATH` or a
//! `postgres://…` URL.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::{PostgresStore, Result, SecretKey, SqliteStore, Store};

/// A database to open a [`Store`] on.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file (created if missing; its directory must exist).
    Sqlite(PathBuf),
    /// A PostgreSQL server's database, as a libpq-style URL (`postgres://user:password@host/db`).
    Postgres(String),
}

/// Why a `--database` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a database URL: expected sqlite:PATH, postgres://… or postgresql://…")]
pub struct DatabaseUrlError(String);

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> std::result::Result<DatabaseUrl, DatabaseUrlError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_string()));
        }
        match text.strip_prefix("sqlite:") {
            Some(path) => {
                // `sqlite://PATH` is accepted too, as sqlx writes it.
                let path = path.strip_prefix("//").unwrap_or(path);
                if path.is_empty() {
                    Err(DatabaseUrlError(text.to_string()))
                } else {
                    Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
                }
            }
            None => Err(DatabaseUrlError(text.to_string())),
        }
    }
}

/// Shows the URL without its password, for logs.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// `url` with the password between `user:` and `@` replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

impl DatabaseUrl {
    /// Opens the store, bringing its schema up to date.
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        self.open_keyed(None).await
    }

    /// Opens the store, bringing its schema up to date, with its secret values sealed under
    /// `secret_key` (`None`: in clear). Refuses a store whose values are sealed under another key.
    pub async fn open_keyed(&self, secret_key: Option<&SecretKey>) -> Result<Arc<dyn Store>> {
        Ok(match self {
            DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open_keyed(path, secret_key).await?),
            DatabaseUrl::Postgres(url) => {
                Arc::new(PostgresStore::connect_keyed(url, secret_key).await?)
            }
        })
    }

    /// Reseals the store's secret values, sealed under `current`, under `new`, in one
    /// transaction. Nothing else may use the database meanwhile (its servers stopped).
    pub async fn rotate_secret_key(&self, current: &SecretKey, new: &SecretKey) -> Result<()> {
        match self {
            DatabaseUrl::Sqlite(path) => {
                SqliteStore::open_keyed(path, Some(current))
                    .await?
                    .rotate_secret_key(new)
                    .await
            }
            DatabaseUrl::Postgres(url) => {
                PostgresStore::connect_keyed(url, Some(current))
                    .await?
                    .rotate_secret_key(new)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_a_file() {
        for text in [
            "sqlite:/var/lib/flowd/flowd.db",
            "sqlite:///var/lib/flowd/flowd.db",
        ] {
            assert_eq!(
                text.parse(),
                Ok(DatabaseUrl::Sqlite("/var/lib/flowd/flowd.db".into()))
            );
        }
        assert_eq!(
            "sqlite:data/flowd.db".parse(),
            Ok(DatabaseUrl::Sqlite("data/flowd.db".into()))
        );
    }

    #[test]
    fn postgres_urls_are_kept_whole() {
        for text in [
            "postgres://flowd:pw@db:5432/flowd",
            "postgresql://db/flowd?sslmode=require",
        ] {
            assert_eq!(text.parse(), Ok(DatabaseUrl::Postgres(text.to_string())));
        }
    }

    #[test]
    fn other_schemes_and_empty_paths_are_refused() {
        for text in ["mysql://db/flowd", "/var/lib/flowd.db", "sqlite:", ""] {
            assert!(text.parse::<DatabaseUrl>().is_err(), "{text}");
        }
    }

    #[test]
    fn shown_urls_hide_the_password() {
        let url: DatabaseUrl = "postgres://flowd:s3cret@db:5432/flowd".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://flowd:***@db:5432/flowd");
        let url: DatabaseUrl = "postgres://flowd@db/flowd".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://flowd@db/flowd");
    }
}
