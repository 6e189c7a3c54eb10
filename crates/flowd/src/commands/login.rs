//! `flowd login` and `flowd logout`.

use anyhow::{anyhow, Result};
use clap::Args;

use crate::api::Api;
use crate::profile::{self, Profile};
use crate::{ui, Global};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Save without checking the URL and key against the server.
    #[arg(long)]
    pub no_verify: bool,
}

pub async fn login(global: &Global, args: LoginArgs) -> Result<()> {
    let server = global
        .server
        .as_deref()
        .ok_or_else(|| anyhow!("flowd login needs --server URL (or FLOWD_SERVER)"))?;
    let server = profile::normalize_server(server)?;
    let api_key = global
        .given_api_key()?
        .ok_or_else(|| anyhow!("flowd login needs --api-key-file PATH (or FLOWD_API_KEY)"))?;
    let mut about = String::new();
    if !args.no_verify {
        let api = Api::with(server.clone(), api_key.clone())?;
        let spinner = ui::spinner(format!("Checking {server}…"));
        let system = api.get("/system").await;
        spinner.finish_and_clear();
        let system = system?;
        if let Some(version) = system["version"].as_str() {
            about = format!(" (flowd {version}");
            let runtimes: Vec<&str> = system["runtimes"]
                .as_array()
                .map(|list| list.iter().filter_map(|r| r["name"].as_str()).collect())
                .unwrap_or_default();
            if !runtimes.is_empty() {
                about.push_str(&format!(", {}", runtimes.join(", ")));
            }
            about.push(')');
        }
    }
    let path = profile::save(&Profile {
        server: Some(server.clone()),
        api_key: Some(api_key),
    })?;
    println!("Logged in to {server}{about}.");
    println!(
        "{}",
        ui::dim(&format!("Profile saved in {}", path.display()))
    );
    Ok(())
}

pub fn logout() -> Result<()> {
    let path = profile::path()?;
    if profile::remove()? {
        println!("Removed {}.", path.display());
    } else {
        println!("No saved profile ({} does not exist).", path.display());
    }
    Ok(())
}
