//! Loading and removing a flowd instance's nftables table with the `nft` command.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The prefix of every table flowd creates; the rest of the name is `<pid>_<sequence>`.
const TABLE_PREFIX: &str = "flowd_egress_";

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the ruleset: {0}")]
    Refused(String),
}

/// A loaded table, deleted when dropped.
#[derive(Debug)]
pub(crate) struct EgressTable {
    name: String,
}

impl EgressTable {
    /// A table name no other live flowd instance (nor another one in this process) uses.
    pub(crate) fn fresh_name() -> String {
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        format!(
            "{TABLE_PREFIX}{}_{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Loads `ruleset`, which creates the table `name`.
    pub(crate) fn load(name: String, ruleset: &str) -> Result<EgressTable, NftError> {
        run_nft(&["-f", "-"], Some(ruleset))?;
        Ok(EgressTable { name })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for EgressTable {
    fn drop(&mut self) {
        if let Err(error) = run_nft(&["delete", "table", "inet", &self.name], None) {
            tracing::warn!(table = %self.name, "cannot remove the egress table: {error}");
        }
    }
}

/// Applies `commands` (one transaction) to tables already loaded.
pub(crate) fn apply(commands: &str) -> Result<(), NftError> {
    run_nft(&["-f", "-"], Some(commands)).map(|_| ())
}

/// Deletes the tables of flowd instances whose process is gone (a crash, a kill -9).
pub(crate) fn remove_stale_tables() -> Result<(), NftError> {
    let listing = run_nft(&["list", "tables", "inet"], None)?;
    for table in stale_tables(&listing, |pid| Path::new(&format!("/proc/{pid}")).exists()) {
        tracing::info!(table, "removing the egress table of a flowd that is gone");
        run_nft(&["delete", "table", "inet", table], None)?;
    }
    Ok(())
}

/// The flowd tables in `nft list tables` output whose process `alive` says is gone.
fn stale_tables(listing: &str, alive: impl Fn(u32) -> bool) -> Vec<&str> {
    listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table inet "))
        .filter(|name| {
            name.strip_prefix(TABLE_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|pid| pid.parse().ok())
                .is_some_and(|pid| !alive(pid))
        })
        .collect()
}

/// Runs `nft` with `args`, `input` on its stdin; answers its stdout.
fn run_nft(args: &[&str], input: Option<&str>) -> Result<String, NftError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).map_err(NftError::Spawn)?;
        }
    }
    let output = child.wait_with_output().map_err(NftError::Spawn)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NftError::Refused(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tables_are_flowd_tables_of_processes_that_are_gone() {
        let listing = "table inet filter\ntable inet flowd_egress_100_0\ntable inet flowd_egress_200_3\ntable inet flowd_egress_x\n";

        let stale = stale_tables(listing, |pid| pid == 200);

        assert_eq!(stale, ["flowd_egress_100_0"]);
    }

    #[test]
    fn fresh_names_differ_within_one_process() {
        assert_ne!(EgressTable::fresh_name(), EgressTable::fresh_name());
    }
}
