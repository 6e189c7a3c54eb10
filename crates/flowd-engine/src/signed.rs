//! Signed deliveries: a hook call of a workflow with `verify` is checked against the secret its
//! settings hold before anything runs; a refused one is recorded as `skipped`, with the reason
//! and nothing of the request.

use flowd_core::verify::{SignedRequest, Verification, VerifyFailure};
use flowd_core::workflow::{ExecutionStatus, Mode, Trigger};
use flowd_store::{ExecutionRecord, StoreWrite};
use serde_json::Value;

use crate::clock::now_ms;
use crate::executor::claimable_record;
use crate::hot::HotWorkflow;
use crate::{Engine, EngineError, Result};

/// The status a call with a refused signature is answered.
pub const UNVERIFIED_STATUS: u16 = 401;

/// Why a call's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefused {
    #[error("{0}")]
    Failed(#[from] VerifyFailure),
    /// The settings key `verify.secret` names holds no secret: the workflow is misconfigured,
    /// and no call can be checked (nor is any let through).
    #[error("the settings key {0:?} named by verify.secret holds no secret (a string, or a list of strings)")]
    NoSecret(String),
    /// The settings could not be read (a shared store that did not answer): no call is let
    /// through unchecked.
    #[error("the settings holding the secret could not be read: {0}")]
    SettingsUnreadable(String),
}

impl Engine {
    /// Checks a call of `hot` (its headers and raw body) against the workflow's `verify`; `Ok`
    /// when the workflow checks none. On a shared store the secret is read from the store.
    pub async fn check_signature(
        &self,
        hot: &HotWorkflow,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<(), SignatureRefused> {
        let Some(verification) = &hot.record.verify else {
            return Ok(());
        };
        let secret = hot
            .settings
            .value(self.store.as_ref(), &verification.secret)
            .await
            .map_err(|error| SignatureRefused::SettingsUnreadable(error.to_string()))?;
        let secrets: Vec<&str> = match &secret {
            Some(Value::String(secret)) if !secret.is_empty() => vec![secret.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter(|secret| !secret.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        if secrets.is_empty() {
            return Err(SignatureRefused::NoSecret(verification.secret.clone()));
        }
        let request = SignedRequest {
            headers,
            body,
            now_s: now_ms().div_euclid(1000),
        };
        Ok(verification.check(&secrets, &request)?)
    }

    /// Records a call of `hot` refused for its signature: `skipped`, answered `401`, the reason
    /// in a warning. Not waited for, like the other refusals.
    pub fn record_refused_signature(
        &self,
        hot: &HotWorkflow,
        refused: &SignatureRefused,
    ) -> ExecutionRecord {
        let mut record = claimable_record(hot, Trigger::Catch, None);
        let now = now_ms();
        record.status = ExecutionStatus::Skipped;
        record.finished_at = Some(now);
        record.duration_ms = Some(now - record.started_at);
        record.response_status = Some(UNVERIFIED_STATUS);
        record
            .warnings
            .push(format!("not run: the signature was refused: {refused}"));
        self.writer
            .enqueue(vec![StoreWrite::PutExecution(record.clone())]);
        record
    }
}

/// The API's `verify` (`None` or `null`: calls are not checked), for a workflow of `mode`.
pub(crate) fn check_verify(mode: Mode, verify: Option<&Value>) -> Result<Option<Verification>> {
    let Some(verify) = verify.filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    if mode != Mode::Catch {
        return Err(EngineError::Invalid(
            "verify: only catch workflows receive calls to check".into(),
        ));
    }
    Verification::from_json(verify)
        .map(Some)
        .map_err(|error| EngineError::Invalid(error.to_string()))
}
