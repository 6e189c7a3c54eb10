//! The profile `flowd login` saves: the server URL and the API key, in the user's config dir
//! (`$XDG_CONFIG_HOME/flowd/profile.json`, else `~/.config/flowd/profile.json`), mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::Global;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    pub server: Option<String>,
    pub api_key: Option<String>,
}

/// Where the profile is kept.
pub fn path() -> Result<PathBuf> {
    let dir = dirs::config_dir().ok_or_else(|| {
        anyhow!("cannot tell where your config dir is: set HOME or XDG_CONFIG_HOME")
    })?;
    Ok(dir.join("flowd").join("profile.json"))
}

/// The saved profile, or an empty one if there is none.
pub fn load() -> Result<Profile> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("the profile {} is not valid JSON", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Saves the profile, readable by its owner only.
pub fn save(profile: &Profile) -> Result<PathBuf> {
    let path = path()?;
    let dir = path.parent().expect("the profile path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let staging = dir.join(format!(".profile.json.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staging)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(serde_json::to_string_pretty(profile)?.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&staging, &path)
    };
    write().map_err(|error| {
        let _ = std::fs::remove_file(&staging);
        anyhow!("cannot write {}: {error}", path.display())
    })?;
    Ok(path)
}

/// Removes the saved profile; whether there was one.
pub fn remove() -> Result<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// The server and API key to use: the flags or environment first, the profile otherwise.
pub fn resolve(global: &Global) -> Result<(String, String)> {
    let given_api_key = global.given_api_key()?;
    let saved = if global.server.is_some() && given_api_key.is_some() {
        Profile::default()
    } else {
        load()?
    };
    let server = global
        .server
        .clone()
        .or(saved.server)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            anyhow!("no server given: run `flowd login --server URL --api-key-file PATH`, or set FLOWD_SERVER")
        })?;
    let api_key = given_api_key
        .or(saved.api_key)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            anyhow!("no API key given: run `flowd login --server URL --api-key-file PATH`, or set FLOWD_API_KEY")
        })?;
    Ok((normalize_server(&server)?, api_key))
}

/// `localhost:8080/` → `http://localhost:8080`.
pub fn normalize_server(server: &str) -> Result<String> {
    let trimmed = server.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), trimmed),
    };
    let rest = rest.trim_end_matches('/');
    if !matches!(scheme.as_str(), "http" | "https") || rest.is_empty() {
        return Err(anyhow!(
            "{trimmed:?} is not a server URL: expected http://HOST:PORT or https://HOST"
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized() {
        assert_eq!(
            normalize_server("localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalize_server("https://flowd.example.com").unwrap(),
            "https://flowd.example.com"
        );
        assert!(normalize_server("ftp://x").is_err());
        assert!(normalize_server("http://").is_err());
    }
}
