//! `flowd migrate-store`: a single node's SQLite store copied into an empty PostgreSQL database,
//! to run several nodes on it (see `flowd_store::migrate`).

use anyhow::{bail, Result};
use clap::Args;
use flowd_store::migrate::sqlite_to_postgres;
use flowd_store::{DatabaseUrl, DatabaseUrlError};

use crate::ui;

pub const EXAMPLES: &str = "\
Example:
  systemctl stop flowd
  FLOWD_DATABASE_URL=postgres://flowd:PASSWORD@db.internal/flowd \\
    flowd migrate-store --from sqlite:/var/lib/flowd/flowd.db

Every table is copied (teams, API keys, workflows, versions, settings and secrets, executions) in
one transaction, then the row counts are compared: the target ends up complete, or as empty as it
was. The target must be empty; its schema is brought up to date first. The source is only read,
as one snapshot: stop the server first (what it writes after the snapshot is not copied).
Secret values are copied as they are, encrypted: start the PostgreSQL nodes with the same secret
key (the data dir's secret-key file, FLOWD_SECRET_KEY or --secret-key-file).";

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// The store to copy: `sqlite:PATH` (stop the server using it first).
    #[arg(long, value_name = "sqlite:PATH", value_parser = parse_database)]
    pub from: DatabaseUrl,
    /// The empty PostgreSQL database to copy into, `postgres://user:password@host:port/database`
    /// (in the environment, the password stays off the command line).
    #[arg(
        long,
        env = "FLOWD_DATABASE_URL",
        hide_env_values = true,
        value_name = "postgres://…",
        value_parser = parse_database
    )]
    pub to: DatabaseUrl,
}

fn parse_database(text: &str) -> Result<DatabaseUrl, String> {
    text.parse()
        .map_err(|err: DatabaseUrlError| err.to_string())
}

pub async fn migrate_store(args: MigrateStoreArgs) -> Result<()> {
    let DatabaseUrl::Sqlite(source) = &args.from else {
        bail!(
            "--from {} is not a SQLite store: migrate-store copies sqlite:PATH into PostgreSQL",
            args.from
        );
    };
    let DatabaseUrl::Postgres(target) = &args.to else {
        bail!(
            "--to {} is not a PostgreSQL database: migrate-store copies into postgres://…",
            args.to
        );
    };
    let spinner = ui::spinner(format!("copying {} into {}", args.from, args.to));
    let copied = sqlite_to_postgres(source, target).await;
    spinner.finish_and_clear();
    let copied = copied?;
    println!("Copied {} into {}:", args.from, args.to);
    let mut table = ui::table(&["table", "rows"]);
    for table_copied in &copied {
        table.add_row(vec![
            table_copied.table.to_string(),
            table_copied.rows.to_string(),
        ]);
    }
    ui::print_table(&table);
    println!(
        "Row counts checked. Start the nodes with --database {} (FLOWD_DATABASE_URL).",
        args.to
    );
    Ok(())
}
