//! The PostgreSQL schema: its migrations, embedded, and the check that the database is not ahead
//! of them.

use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::Result;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The newest schema version applied to the database (`None`: never migrated).
async fn database_version(pool: &PgPool) -> Result<Option<i64>> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !migrated {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}

/// Brings the schema up to date, or refuses a database that a newer binary migrated (its
/// schema has what this binary does not know). Nodes starting at once take turns: the migrator
/// holds an advisory lock while it runs.
pub(crate) async fn migrate(pool: &PgPool) -> Result<()> {
    crate::schema_version::refuse_newer(&MIGRATOR, database_version(pool).await?)?;
    MIGRATOR.run(pool).await?;
    Ok(())
}
