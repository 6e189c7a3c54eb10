//! The secret key secret values are sealed with at rest, as `flowd serve` and
//! `flowd rotate-secret-key` are given it: `--secret-key-file PATH`, else `FLOWD_SECRET_KEY`,
//! else the server's `<data dir>/secret-key`. Never on the command line.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use flowd_store::SecretKey;

use crate::secret_input;

/// The environment variable holding the key.
pub const ENV: &str = "FLOWD_SECRET_KEY";

/// The error for a key given on the command line.
pub fn refused_on_command_line() -> anyhow::Error {
    secret_input::refused_on_command_line(
        "--secret-key",
        "--secret-key-file PATH or the environment variable FLOWD_SECRET_KEY",
    )
}

/// The key of `--secret-key-file` (`file`), else of `FLOWD_SECRET_KEY`; `None` when neither
/// is given.
pub fn given(file: Option<&Path>) -> Result<Option<SecretKey>> {
    match file {
        Some(path) => parse(&secret_input::read_secret_file(path)?)
            .with_context(|| format!("the secret key file {}", path.display()))
            .map(Some),
        None => secret_input::from_env(ENV)
            .map(|text| parse(&text).with_context(|| format!("the environment variable {ENV}")))
            .transpose(),
    }
}

/// The key in a key file written by `flowd serve` (or by hand).
pub fn from_file(path: &Path) -> Result<SecretKey> {
    parse(&secret_input::read_secret_file(path)?)
        .with_context(|| format!("the secret key file {}", path.display()))
}

fn parse(text: &str) -> Result<SecretKey> {
    text.parse().map_err(|error| anyhow!("{error}"))
}
