//! Secrets a command is given: read from a file or from flowd's environment, never taken from
//! the command line, which every process of the machine can read in `/proc/<pid>/cmdline` (the
//! workflows flowd runs included). A process's environment (`/proc/<pid>/environ`) is readable by
//! its owner only.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

/// The error for a secret given on the command line: says why, and what to use instead.
pub fn refused_on_command_line(flag: &str, instead: &str) -> anyhow::Error {
    anyhow!(
        "{flag} is not accepted: a secret on the command line can be read by every process of \
         the machine (/proc/<pid>/cmdline); use {instead}"
    )
}

/// The secret held by the file at `path`, without its trailing newline.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let content = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the secret file {}", path.display()))?;
    let secret = content.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(anyhow!("the secret file {} is empty", path.display()));
    }
    Ok(secret.to_string())
}

/// The value of the environment variable `name`, if it is set and not blank.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_read_without_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), "s3cr3t-value");
    }

    #[test]
    fn an_empty_secret_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret_file(&path).is_err());
    }

    #[test]
    fn the_refusal_names_the_option_to_use_instead() {
        let message = refused_on_command_line("--api-key", "--api-key-file PATH").to_string();
        assert!(message.contains("--api-key-file PATH"), "{message}");
    }
}
