//! Secret values at rest: workflows' environment variables and settings values are stored
//! sealed with XChaCha20-Poly1305 under the server's 32-byte secret key, each with a random
//! 192-bit nonce and, as associated data, what it is the value of (environment variable or
//! setting, the workflow's id, the name), so a sealed value copied onto another workflow or key
//! does not open.
//!
//! A store keyed this way keeps the key's fingerprint (HMAC-SHA256 of a constant under the key):
//! opened with another key it refuses to start, before anything is served. A store opened
//! without a key keeps values in clear (tests and tools), and refuses a store whose values are
//! sealed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Result, StoreError};
use crate::store::StoreWrite;
use flowd_core::settings::{Settings, SettingsChange};

/// How a sealed value starts: the format's version.
const SEALED_PREFIX: &str = "flowd-sealed-v1:";
/// The nonce's length (XChaCha20: 192 bits).
const NONCE_LEN: usize = 24;
/// What the fingerprint is the HMAC of.
const FINGERPRINT_MESSAGE: &[u8] = b"flowd secret key fingerprint v1";

/// The server's secret key: 32 bytes, written as 64 hex characters.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

/// Why a text is not a secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a secret key is 64 hexadecimal characters (32 bytes), e.g. from `openssl rand -hex 32`")]
pub struct InvalidSecretKey;

impl SecretKey {
    /// A new random key.
    pub fn generate() -> SecretKey {
        SecretKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key as 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// What identifies the key without revealing it: HMAC-SHA256 of a constant under the key,
    /// as hex.
    pub fn fingerprint(&self) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(FINGERPRINT_MESSAGE);
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Parses 64 hex characters; white space around them (a trailing newline) is ignored.
impl FromStr for SecretKey {
    type Err = InvalidSecretKey;

    fn from_str(text: &str) -> std::result::Result<SecretKey, InvalidSecretKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| InvalidSecretKey)?;
        Ok(SecretKey(bytes))
    }
}

/// Never shows the key.
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// What a sealed value is the value of: part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretKind {
    Env,
    Setting,
    /// A stored request (the name is its execution's id).
    Request,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            SecretKind::Env => "env",
            SecretKind::Setting => "setting",
            SecretKind::Request => "request",
        }
    }
}

/// Seals and opens values under one key.
struct Cipher {
    aead: XChaCha20Poly1305,
}

/// How a store keeps secret values: sealed under a key, or in clear (no key).
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    cipher: Option<Arc<Cipher>>,
    fingerprint: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

fn associated_data(kind: SecretKind, workflow_id: &str, name: &str) -> Vec<u8> {
    // The kind and the id hold no NUL, so the name, last, is unambiguous.
    [kind.as_str(), workflow_id, name].join("\0").into_bytes()
}

impl Secrets {
    /// Values in clear.
    pub(crate) fn clear() -> Secrets {
        Secrets::default()
    }

    /// Values sealed under `key`.
    pub(crate) fn sealed(key: &SecretKey) -> Secrets {
        Secrets {
            cipher: Some(Arc::new(Cipher {
                aead: XChaCha20Poly1305::new(&key.0.into()),
            })),
            fingerprint: Some(key.fingerprint()),
        }
    }

    /// The fingerprint of the key, if values are sealed.
    pub(crate) fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// `plain` as stored: sealed (with a nonce of its own), or as it is.
    pub(crate) fn seal(
        &self,
        kind: SecretKind,
        workflow_id: &str,
        name: &str,
        plain: &str,
    ) -> String {
        let Some(cipher) = &self.cipher else {
            return plain.to_string();
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &associated_data(kind, workflow_id, name),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", hex::encode(bytes))
    }

    /// `plain` bytes as stored: the sealed prefix, the nonce and the sealed bytes; or as they are.
    pub(crate) fn seal_bytes(
        &self,
        kind: SecretKind,
        workflow_id: &str,
        name: &str,
        plain: &[u8],
    ) -> Vec<u8> {
        let Some(cipher) = &self.cipher else {
            return plain.to_vec();
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &associated_data(kind, workflow_id, name),
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let mut bytes = Vec::with_capacity(SEALED_PREFIX.len() + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(SEALED_PREFIX.as_bytes());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        bytes
    }

    /// Stored bytes in clear: opened, or as they are when the store has no key. Bytes that do
    /// not open (another key, another workflow's or name's, altered, or not sealed while the
    /// store has a key) are `Corrupt`.
    pub(crate) fn open_bytes(
        &self,
        kind: SecretKind,
        workflow_id: &str,
        name: &str,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let is_sealed = stored.starts_with(SEALED_PREFIX.as_bytes());
        let corrupt = |why: &str| {
            StoreError::Corrupt(format!(
                "the {} {name:?} of workflow {workflow_id} {why}",
                kind.as_str()
            ))
        };
        let Some(cipher) = &self.cipher else {
            return if is_sealed {
                Err(corrupt("is sealed and the store has no secret key"))
            } else {
                Ok(stored)
            };
        };
        let bytes = stored
            .strip_prefix(SEALED_PREFIX.as_bytes())
            .filter(|bytes| bytes.len() >= NONCE_LEN)
            .ok_or_else(|| corrupt("is not sealed"))?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        cipher
            .aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &associated_data(kind, workflow_id, name),
                },
            )
            .map_err(|_| corrupt("does not open under the secret key"))
    }

    /// A stored request's payload, opened and decoded.
    pub(crate) fn open_stored_request(
        &self,
        workflow_id: &str,
        execution_id: &str,
        payload: Vec<u8>,
    ) -> Result<crate::RequestParts> {
        let opened = self.open_bytes(SecretKind::Request, workflow_id, execution_id, payload)?;
        crate::stored_request::decode(execution_id, &opened)
    }

    /// A stored request's payload as stored under `to`, from what it is under `self`.
    pub(crate) fn reseal_request(
        &self,
        to: &Secrets,
        workflow_id: &str,
        execution_id: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let opened = self.open_bytes(SecretKind::Request, workflow_id, execution_id, payload)?;
        Ok(to.seal_bytes(SecretKind::Request, workflow_id, execution_id, &opened))
    }

    /// A stored value in clear: opened, or as it is. A value that does not open (another key,
    /// another workflow's or name's, altered) is `Corrupt`.
    pub(crate) fn open(
        &self,
        kind: SecretKind,
        workflow_id: &str,
        name: &str,
        stored: &str,
    ) -> Result<String> {
        let Some(cipher) = &self.cipher else {
            return Ok(stored.to_string());
        };
        let corrupt = |why: &str| {
            StoreError::Corrupt(format!(
                "the {} {name:?} of workflow {workflow_id} {why}",
                kind.as_str()
            ))
        };
        let bytes = stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|text| hex::decode(text).ok())
            .filter(|bytes| bytes.len() >= NONCE_LEN)
            .ok_or_else(|| corrupt("is not a sealed value"))?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = cipher
            .aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &associated_data(kind, workflow_id, name),
                },
            )
            .map_err(|_| corrupt("does not open under the secret key"))?;
        String::from_utf8(plain).map_err(|_| corrupt("is not UTF-8 once opened"))
    }

    /// A workflow's environment variables as stored.
    pub(crate) fn seal_env(
        &self,
        workflow_id: &str,
        env: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        env.iter()
            .map(|(name, value)| {
                (
                    name.clone(),
                    self.seal(SecretKind::Env, workflow_id, name, value),
                )
            })
            .collect()
    }

    /// A workflow's environment variables as stored, in clear.
    pub(crate) fn open_env(
        &self,
        workflow_id: &str,
        stored: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        stored
            .into_iter()
            .map(|(name, value)| {
                let value = self.open(SecretKind::Env, workflow_id, &name, &value)?;
                Ok((name, value))
            })
            .collect()
    }

    /// A setting's value as stored: sealed, a JSON string; in clear, as it is.
    pub(crate) fn seal_setting(
        &self,
        workflow_id: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> serde_json::Value {
        match self.cipher {
            Some(_) => serde_json::Value::String(self.seal(
                SecretKind::Setting,
                workflow_id,
                key,
                &value.to_string(),
            )),
            None => value.clone(),
        }
    }

    /// A workflow's settings as stored.
    pub(crate) fn seal_settings(&self, workflow_id: &str, settings: &Settings) -> Settings {
        settings
            .iter()
            .map(|(key, value)| (key.clone(), self.seal_setting(workflow_id, key, value)))
            .collect()
    }

    /// The executions' writes as stored: the values of settings changes sealed.
    pub(crate) fn seal_writes(&self, writes: Vec<StoreWrite>) -> Vec<StoreWrite> {
        if self.cipher.is_none() {
            return writes;
        }
        writes
            .into_iter()
            .map(|write| match write {
                StoreWrite::ApplySettingsChange {
                    workflow_id,
                    change,
                } => StoreWrite::ApplySettingsChange {
                    change: SettingsChange {
                        added: self.seal_settings(&workflow_id, &change.added),
                        changed: self.seal_settings(&workflow_id, &change.changed),
                        removed: change.removed,
                    },
                    workflow_id,
                },
                StoreWrite::PutStoredRequest(mut request) => {
                    request.payload = self.seal_bytes(
                        SecretKind::Request,
                        &request.workflow_id,
                        &request.execution_id,
                        &request.payload,
                    );
                    StoreWrite::PutStoredRequest(request)
                }
                other => other,
            })
            .collect()
    }

    /// A setting's value from the JSON text its column holds.
    pub(crate) fn open_setting(
        &self,
        workflow_id: &str,
        key: &str,
        stored: &str,
    ) -> Result<serde_json::Value> {
        let what = || format!("the value of setting {key:?}");
        let parse = |text: &str| {
            serde_json::from_str(text)
                .map_err(|err| StoreError::Corrupt(format!("{} is not valid JSON: {err}", what())))
        };
        if self.cipher.is_none() {
            return parse(stored);
        }
        let sealed: serde_json::Value = parse(stored)?;
        let sealed = sealed.as_str().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{} of workflow {workflow_id} is not sealed",
                what()
            ))
        })?;
        parse(&self.open(SecretKind::Setting, workflow_id, key, sealed)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
            .parse()
            .unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed_and_does_not_show_it() {
        let secrets = Secrets::sealed(&key());
        let sealed = secrets.seal(SecretKind::Env, "w1", "TOKEN", "hunter2-hunter2");
        assert!(!sealed.contains("hunter2"), "{sealed}");
        assert_eq!(
            secrets
                .open(SecretKind::Env, "w1", "TOKEN", &sealed)
                .unwrap(),
            "hunter2-hunter2"
        );
    }

    #[test]
    fn each_seal_of_one_value_differs() {
        let secrets = Secrets::sealed(&key());
        let once = secrets.seal(SecretKind::Env, "w1", "TOKEN", "v");
        let twice = secrets.seal(SecretKind::Env, "w1", "TOKEN", "v");
        assert_ne!(once, twice);
    }

    #[test]
    fn a_sealed_value_does_not_open_as_another_workflows_or_names_or_kinds() {
        let secrets = Secrets::sealed(&key());
        let sealed = secrets.seal(SecretKind::Env, "w1", "TOKEN", "v");
        for (kind, workflow, name) in [
            (SecretKind::Env, "w2", "TOKEN"),
            (SecretKind::Env, "w1", "OTHER"),
            (SecretKind::Setting, "w1", "TOKEN"),
        ] {
            assert!(matches!(
                secrets.open(kind, workflow, name, &sealed),
                Err(StoreError::Corrupt(_))
            ));
        }
    }

    #[test]
    fn a_sealed_value_does_not_open_under_another_key() {
        let sealed = Secrets::sealed(&key()).seal(SecretKind::Env, "w1", "TOKEN", "v");
        let other = Secrets::sealed(&SecretKey::generate());
        assert!(other.open(SecretKind::Env, "w1", "TOKEN", &sealed).is_err());
    }

    #[test]
    fn a_setting_is_stored_as_a_json_string_and_opens_to_its_value() {
        let secrets = Secrets::sealed(&key());
        let value = serde_json::json!({"token": "abc", "n": [1, 2]});
        let stored = secrets.seal_setting("w1", "api", &value);
        assert!(stored.is_string(), "{stored}");
        assert_eq!(
            secrets
                .open_setting("w1", "api", &stored.to_string())
                .unwrap(),
            value
        );
    }

    #[test]
    fn sealed_bytes_open_to_what_was_sealed_and_only_as_the_same_execution_s() {
        let secrets = Secrets::sealed(&key());
        let sealed = secrets.seal_bytes(SecretKind::Request, "w1", "e1", b"\x00name=Ana");
        assert!(sealed.starts_with(SEALED_PREFIX.as_bytes()));
        assert!(!sealed.windows(3).any(|w| w == b"Ana"));
        assert_eq!(
            secrets
                .open_bytes(SecretKind::Request, "w1", "e1", sealed.clone())
                .unwrap(),
            b"\x00name=Ana"
        );
        assert!(secrets
            .open_bytes(SecretKind::Request, "w1", "e2", sealed)
            .is_err());
    }

    #[test]
    fn keys_parse_from_64_hex_characters_only() {
        assert_eq!(
            format!("{}\n", key().to_hex()).parse::<SecretKey>(),
            Ok(key())
        );
        for bad in ["", "00", &"zz".repeat(32), &"00".repeat(33)] {
            assert_eq!(bad.parse::<SecretKey>(), Err(InvalidSecretKey), "{bad}");
        }
    }

    #[test]
    fn the_fingerprint_tells_keys_apart_and_does_not_show_the_key() {
        let fingerprint = key().fingerprint();
        assert_eq!(fingerprint, key().fingerprint());
        assert_ne!(fingerprint, SecretKey::generate().fingerprint());
        assert!(!fingerprint.contains(&key().to_hex()));
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(format!("{:?}", key()), "SecretKey(…)");
    }
}
