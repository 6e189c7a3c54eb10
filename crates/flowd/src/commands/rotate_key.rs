//! `flowd rotate-secret-key`: reseals every secret value of a data dir's store under a new key,
//! in one transaction, with the server stopped.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use flowd_server::{DatabaseUrl, DatabaseUrlError, SecretKey, SECRET_KEY_FILE};

use crate::secret_key;

pub const EXAMPLES: &str = "\
Examples:
  systemctl stop flowd
  flowd rotate-secret-key --data-dir /var/lib/flowd     # a new key in /var/lib/flowd/secret-key
  systemctl start flowd

  # a key kept outside the data dir:
  FLOWD_SECRET_KEY_FILE=/etc/flowd/key flowd rotate-secret-key --new-secret-key-file /etc/flowd/key.new

Stop every server on the store first: a server still running would write values sealed with the
old key. Backups taken before the rotation need the old key.";

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The data dir of the (stopped) server.
    #[arg(long, env = "FLOWD_DATA_DIR", default_value = "./flowd-data")]
    pub data_dir: PathBuf,
    /// The store, as `flowd serve --database` takes it [default: sqlite:<data-dir>/flowd.db].
    #[arg(long, env = "FLOWD_DATABASE_URL", hide_env_values = true, value_parser = parse_database)]
    pub database: Option<DatabaseUrl>,
    /// A file holding the current key [default: $FLOWD_SECRET_KEY, else <data-dir>/secret-key].
    #[arg(long, env = "FLOWD_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,
    /// A file holding the new key (64 hex characters) [default: generated, and written to
    /// <data-dir>/secret-key when the current key is there].
    #[arg(long, value_name = "PATH")]
    pub new_secret_key_file: Option<PathBuf>,
}

fn parse_database(text: &str) -> Result<DatabaseUrl, String> {
    text.parse()
        .map_err(|err: DatabaseUrlError| err.to_string())
}

pub async fn rotate(args: RotateArgs) -> Result<()> {
    let key_file = args.data_dir.join(SECRET_KEY_FILE);
    let given = secret_key::given(args.secret_key_file.as_deref())?;
    let in_data_dir = given.is_none();
    let current = match given {
        Some(key) => key,
        None => secret_key::from_file(&key_file)?,
    };
    let new = match &args.new_secret_key_file {
        Some(path) => secret_key::from_file(path)?,
        None if in_data_dir => SecretKey::generate(),
        None => {
            return Err(anyhow!(
                "the current key is given by FLOWD_SECRET_KEY or --secret-key-file: give the \
                 new one with --new-secret-key-file PATH"
            ))
        }
    };
    if new == current {
        return Err(anyhow!("the new key is the current one"));
    }
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| DatabaseUrl::Sqlite(args.data_dir.join("flowd.db")));
    // The new key is on disk before the store is sealed with it, and takes the place of the
    // current one only once the store is.
    let staged = key_file.with_file_name(format!("{SECRET_KEY_FILE}.new"));
    if in_data_dir {
        flowd_engine::auth::write_secret_file_durably(&staged, &new.to_hex())
            .with_context(|| format!("cannot write {}", staged.display()))?;
    }
    if let Err(error) = database.rotate_secret_key(&current, &new).await {
        if in_data_dir {
            let _ = std::fs::remove_file(&staged);
        }
        return Err(error).context("the rotation was rolled back: the current key stays");
    }
    if in_data_dir {
        std::fs::rename(&staged, &key_file).with_context(|| {
            format!(
                "the store is sealed with the new key in {}, which could not be moved to {}: \
                 move it there before starting flowd",
                staged.display(),
                key_file.display()
            )
        })?;
        println!(
            "Every secret value of {database} is sealed with the new key, now in {}.",
            key_file.display()
        );
    } else {
        println!(
            "Every secret value of {database} is sealed with the new key of {}: start flowd \
             with it (FLOWD_SECRET_KEY or --secret-key-file).",
            args.new_secret_key_file
                .as_deref()
                .map(|path| path.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(())
}
