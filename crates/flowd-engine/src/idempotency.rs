//! Idempotent deliveries: a hook call carrying an idempotency key runs once per key and
//! workflow within the keys' time to live; its repeats get the first execution's stored
//! response, a repeat arriving while the first runs waits for it (bounded), and the same key with
//! another request is refused. The key is claimed in the store, so this holds across nodes
//! sharing it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowd_store::{IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, StoredResponse};

use crate::clock::now_ms;
use crate::delivery::ClaimedKey;
use crate::executor::Reply;
use crate::hot::HotWorkflow;
use crate::{Engine, EngineError, Result};
use flowd_core::workflow::Mode;

/// The header carrying the key when a workflow names none (draft-ietf-httpapi-idempotency-key-header).
pub const DEFAULT_IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The longest key accepted; a longer one is refused (`400`).
pub const MAX_KEY_LENGTH: usize = 255;

/// How often a repeat waiting for the first delivery's response looks for it in the store.
const WAIT_POLL: Duration = Duration::from_millis(50);
/// How long past its time limit a claimed execution may still be going (its wait for a slot, its
/// commit): a key held without a response longer than that was left by a node that stopped.
const STALE_MARGIN: Duration = Duration::from_secs(60);
/// How long past the workflow's time limit a repeat waits for the first delivery's response.
const WAIT_MARGIN: Duration = Duration::from_secs(5);
/// How often the sweep deletes expired keys.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// What to do with a call carrying an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The first delivery of the key: run it, under the claimed execution id.
    Run(ClaimedKey),
    /// A repeat: answer the first execution's response, with its execution id.
    Repeat { execution_id: String, reply: Reply },
    /// The key came before with another request (`422`).
    KeyReused { execution_id: String },
    /// The first delivery was still running when the wait ended (`409`).
    StillRunning { execution_id: String },
}

impl Engine {
    /// Claims `key` for a call of `hot` whose request has the digest `request_digest`, or says
    /// how to answer the repeat it is.
    pub async fn claim_delivery(
        &self,
        hot: &HotWorkflow,
        key: &str,
        request_digest: &str,
    ) -> Result<Delivery> {
        let execution_id = uuid::Uuid::now_v7().to_string();
        let limit = Duration::from_secs(u64::from(hot.record.timeout_s));
        let wait_until = Instant::now() + limit + flowd_runtime::CALL_MARGIN + WAIT_MARGIN;
        let stale_ms = millis(limit + STALE_MARGIN);
        let ttl_ms = millis(self.config.idempotency_ttl);
        loop {
            let now = now_ms();
            let claim = IdempotencyClaim {
                workflow_id: hot.record.id.clone(),
                key: key.to_string(),
                request_digest: request_digest.to_string(),
                execution_id: execution_id.clone(),
                claimed_at: now,
                expires_at: now.saturating_add(ttl_ms),
                stale_before: now.saturating_sub(stale_ms),
            };
            let holder = match self.store.claim_idempotency_key(&claim).await? {
                IdempotencyClaimOutcome::Claimed => {
                    return Ok(Delivery::Run(ClaimedKey {
                        key: key.to_string(),
                        execution_id,
                    }))
                }
                IdempotencyClaimOutcome::Held(holder) => holder,
            };
            if holder.request_digest != request_digest {
                return Ok(Delivery::KeyReused {
                    execution_id: holder.execution_id,
                });
            }
            if let Some(answer) = repeat(&holder) {
                return Ok(answer);
            }
            // The first delivery is running: wait for its response, or for the key to change
            // hands (released, expired, stale), then claim again.
            loop {
                if Instant::now() >= wait_until {
                    return Ok(Delivery::StillRunning {
                        execution_id: holder.execution_id,
                    });
                }
                tokio::time::sleep(WAIT_POLL).await;
                match self.store.idempotency_key(&hot.record.id, key).await? {
                    Some(now_held)
                        if now_held.execution_id == holder.execution_id
                            && now_held.claimed_at >= now_ms().saturating_sub(stale_ms) =>
                    {
                        if let Some(answer) = repeat(&now_held) {
                            return Ok(answer);
                        }
                    }
                    _ => break,
                }
            }
        }
    }

    /// Gives back a key whose execution ran nothing worth repeating (refused, or not saved), so
    /// that the sender's retry runs. A failure is logged: the key then expires or goes stale.
    pub(crate) fn release_key(&self, workflow_id: &str, claimed: &ClaimedKey) {
        let store = self.store.clone();
        let workflow_id = workflow_id.to_string();
        let claimed = claimed.clone();
        tokio::spawn(async move {
            if let Err(error) = store
                .release_idempotency_key(&workflow_id, &claimed.key, &claimed.execution_id)
                .await
            {
                tracing::warn!(%error, key = %claimed.key, "an idempotency key could not be released");
            }
        });
    }

    /// Deletes the expired idempotency keys every [`SWEEP_INTERVAL`], until the engine is
    /// dropped.
    pub fn sweep_idempotency_keys(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                ticks.tick().await;
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                match engine.store.delete_expired_idempotency_keys(now_ms()).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "expired idempotency keys deleted"),
                    Err(error) => tracing::warn!(%error, "expired idempotency keys not deleted"),
                }
            }
        })
    }
}

/// The answer to a repeat of `holder`'s key, once its response is stored.
fn repeat(holder: &IdempotencyRecord) -> Option<Delivery> {
    holder.response.as_ref().map(|response| Delivery::Repeat {
        execution_id: holder.execution_id.clone(),
        reply: Reply {
            status: response.status,
            headers: response.headers.clone(),
            body: response.body.clone(),
        },
    })
}

/// The response stored for the repeats of a call.
pub(crate) fn stored_response(reply: &Reply) -> StoredResponse {
    StoredResponse {
        status: reply.status,
        headers: reply.headers.clone(),
        body: reply.body.clone(),
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The API's `idempotency_header` (`None`: `Idempotency-Key`), for a workflow of `mode`: an HTTP
/// header name, kept in lower case.
pub(crate) fn check_idempotency_header(mode: Mode, header: Option<&str>) -> Result<Option<String>> {
    let Some(header) = header else {
        return Ok(None);
    };
    if mode != Mode::Catch {
        return Err(EngineError::Invalid(
            "idempotency_header: only catch workflows receive calls".into(),
        ));
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if header.is_empty() || header.len() > 128 || !header.bytes().all(token) {
        return Err(EngineError::Invalid(format!(
            "idempotency_header: {header:?} is not an HTTP header name"
        )));
    }
    Ok(Some(header.to_ascii_lowercase()))
}
