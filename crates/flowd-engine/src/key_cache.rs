//! API keys looked up by their hash, kept in memory for a short time so that a request does not
//! read the store twice before it starts. A key revoked on this node is dropped at once
//! ([`KeyCache::invalidate`]); one revoked on another node stops working when its entry's
//! [`KEY_CACHE_TTL`] runs out, or at once when a cross-node notification calls the hook.
//! Also decides when a key's `last_used_at` is worth writing: at most once a
//! [`LAST_USED_INTERVAL`] per key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Principal;

/// How long a key looked up in the store is trusted without looking again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// A key's `last_used_at` is written at most this often.
pub const LAST_USED_INTERVAL: Duration = Duration::from_secs(60);
/// Entries kept at most: a flood of wrong keys cannot grow it without bound.
const MAX_ENTRIES: usize = 10_000;

/// A key as it was found in the store.
#[derive(Debug, Clone)]
pub struct CachedKey {
    pub principal: Principal,
    /// Epoch ms after which the key is refused.
    pub expires_at: Option<i64>,
}

struct Entry {
    key: CachedKey,
    fetched: Instant,
}

#[derive(Default)]
struct State {
    by_hash: HashMap<String, Entry>,
    /// When each key's use was last written, by key id.
    touched: HashMap<String, Instant>,
}

pub struct KeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key of this hash, if it was looked up less than the TTL ago.
    pub fn get(&self, key_hash: &str) -> Option<CachedKey> {
        let state = self.lock();
        let entry = state.by_hash.get(key_hash)?;
        (entry.fetched.elapsed() < self.ttl).then(|| entry.key.clone())
    }

    pub fn put(&self, key_hash: String, key: CachedKey) {
        let mut state = self.lock();
        if state.by_hash.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            state
                .by_hash
                .retain(|_, entry| entry.fetched.elapsed() < ttl);
            if state.by_hash.len() >= MAX_ENTRIES {
                state.by_hash.clear();
            }
        }
        state.by_hash.insert(
            key_hash,
            Entry {
                key,
                fetched: Instant::now(),
            },
        );
    }

    /// Forgets every key: the next request of each looks it up in the store again. Called when a
    /// key is revoked or a team renamed here, and the hook for such changes made on other nodes.
    pub fn invalidate(&self) {
        self.lock().by_hash.clear();
    }

    /// Whether the use of key `key_id` now should be written (and, if so, notes it as written).
    pub fn should_record_use(&self, key_id: &str) -> bool {
        let mut state = self.lock();
        match state.touched.get(key_id) {
            Some(at) if at.elapsed() < LAST_USED_INTERVAL => false,
            _ => {
                state.touched.insert(key_id.to_string(), Instant::now());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowd_core::access::Role;

    fn cached(name: &str) -> CachedKey {
        CachedKey {
            principal: Principal {
                key_id: format!("id-{name}"),
                key_name: name.into(),
                team_id: "t".into(),
                team_name: "default".into(),
                role: Role::Viewer,
            },
            expires_at: None,
        }
    }

    #[test]
    fn a_key_is_served_from_memory_within_the_ttl() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.put("h".into(), cached("ci"));
        assert_eq!(cache.get("h").unwrap().principal.key_name, "ci");
    }

    #[test]
    fn a_key_past_the_ttl_is_looked_up_again() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put("h".into(), cached("ci"));
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn invalidating_forgets_every_key() {
        let cache = KeyCache::new(Duration::from_secs(60));
        cache.put("h".into(), cached("ci"));
        cache.invalidate();
        assert!(cache.get("h").is_none());
    }

    #[test]
    fn a_use_is_recorded_once_per_interval() {
        let cache = KeyCache::new(KEY_CACHE_TTL);
        assert!(cache.should_record_use("k"));
        assert!(!cache.should_record_use("k"));
        assert!(cache.should_record_use("other"));
    }
}
