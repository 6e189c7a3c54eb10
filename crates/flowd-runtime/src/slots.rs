//! The warm instance slots of a runtime, one per code version: the instances of the version,
//! whether a pre-warm holds it for a coming run, and the LRU that stops the least recently used
//! beyond the runtime's capacity (those held for a run last).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bases::BaseProcess;
use crate::instance::Instance;
use crate::sync::lock;

/// What [`Runtime::prewarm`](crate::Runtime::prewarm) holds an instance for: a run expected `run_in` from now, and how
/// long past that the instance stays held if the run starts late (or never comes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub run_in: Duration,
    pub grace: Duration,
}

/// A slot's reservation: the run it is held for, and when it ends at the latest.
#[derive(Debug, Clone, Copy)]
struct Held {
    run_at: Instant,
    until: Instant,
}

/// An execution this close before the time a reservation was made for is that run (the
/// scheduler never starts a run early; this absorbs the rounding of its millisecond clock).
const RUN_AT_TOLERANCE: Duration = Duration::from_millis(100);

/// A warm instance slot: one per code version.
pub(crate) struct Slot {
    /// `isolation: "fork"`: the one instance every execution forks from.
    pub(crate) instance: tokio::sync::Mutex<Option<Arc<Instance>>>,
    /// `isolation: "reuse"`: instances waiting for their next execution, and how many may exist.
    pub(crate) idle: Mutex<Vec<Arc<Instance>>>,
    pub(crate) reuse_capacity: tokio::sync::Semaphore,
    last_used: AtomicU64,
    /// Set by a pre-warm: the slot is held for a coming run, and evicted only when no slot
    /// without a reservation is left to evict. The run it was held for clears it.
    held: Mutex<Option<Held>>,
    /// The base process its instances are forked from.
    pub(crate) base: Arc<BaseProcess>,
}

impl Slot {
    /// Holds the slot for a coming run (and, if it was held for another already, until the
    /// later of the two).
    pub(crate) fn reserve(&self, reservation: Reservation, now: Instant) {
        let wanted = Held {
            run_at: now + reservation.run_in,
            until: now + reservation.run_in + reservation.grace,
        };
        let mut held = lock(&self.held);
        *held = Some(match *held {
            Some(earlier) => Held {
                run_at: earlier.run_at.max(wanted.run_at),
                until: earlier.until.max(wanted.until),
            },
            None => wanted,
        });
    }

    /// An execution starts at `now`: the reservation ends if this is the run it was made for,
    /// not when it is an earlier run with the reserved one still to come.
    pub(crate) fn release_if_due(&self, now: Instant) {
        let mut held = lock(&self.held);
        if held.is_some_and(|held| held.run_at <= now + RUN_AT_TOLERANCE) {
            *held = None;
        }
    }

    /// Whether its `isolation: "fork"` instance is running, or being started or used right now.
    pub(crate) fn has_live_instance(&self) -> bool {
        match self.instance.try_lock() {
            Ok(instance) => instance.as_ref().is_some_and(|i| i.is_alive()),
            Err(_) => true,
        }
    }

    /// When the run it is held for is due, if it is held at `now` (an expired reservation is
    /// not).
    pub(crate) fn reserved_for(&self, now: Instant) -> Option<Instant> {
        lock(&self.held)
            .filter(|held| held.until > now)
            .map(|held| held.run_at)
    }

    /// What its warm instances hold alone, in KiB.
    pub(crate) fn memory_kb(&self) -> u64 {
        let forked = self
            .instance
            .try_lock()
            .ok()
            .and_then(|instance| instance.as_ref().map(|i| i.memory_kb()))
            .unwrap_or(0);
        let reused: u64 = lock(&self.idle).iter().map(|i| i.memory_kb()).sum();
        forked + reused
    }
}

/// How much the warm instances of a runtime may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capacity {
    pub(crate) max_instances: usize,
    pub(crate) memory_kb: u64,
}

/// The slots of a runtime by version key, with the clock that orders their last uses.
#[derive(Default)]
pub(crate) struct Slots {
    by_version: HashMap<String, Arc<Slot>>,
    clock: u64,
}

impl Slots {
    /// The slot of `version_key` (made with `base` and room for `reuse_pool_size` parallel
    /// `isolation: "reuse"` instances if it has none), marked as the most recently used.
    pub(crate) fn use_slot(
        &mut self,
        version_key: &str,
        base: &Arc<BaseProcess>,
        reuse_pool_size: usize,
    ) -> Arc<Slot> {
        self.clock += 1;
        let now = self.clock;
        let slot = self
            .by_version
            .entry(version_key.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    instance: tokio::sync::Mutex::new(None),
                    idle: Mutex::new(Vec::new()),
                    reuse_capacity: tokio::sync::Semaphore::new(reuse_pool_size.max(1)),
                    last_used: AtomicU64::new(now),
                    held: Mutex::new(None),
                    base: base.clone(),
                })
            })
            .clone();
        slot.last_used.store(now, Ordering::Relaxed);
        slot
    }

    /// Stops the warm instances of a version.
    pub(crate) fn remove(&mut self, version_key: &str) {
        self.by_version.remove(version_key);
    }

    /// Stops every warm instance.
    pub(crate) fn clear(&mut self) {
        self.by_version.clear();
    }

    /// Removes the slots whose version key `remove` says so of.
    pub(crate) fn remove_where(&mut self, remove: impl Fn(&str) -> bool) {
        self.by_version.retain(|key, _| !remove(key));
    }

    pub(crate) fn len(&self) -> usize {
        self.by_version.len()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Slot>> {
        self.by_version.values().cloned().collect()
    }

    /// Whether a slot's instances come from the base process of the environment `id`.
    pub(crate) fn use_environment(&self, id: &str) -> bool {
        self.by_version
            .values()
            .any(|slot| slot.base.environment.as_deref() == Some(id))
    }

    /// Stops the least recently used warm instances while there are more than `capacity`
    /// allows, or while they (with `other_kb` held by processes outside the slots) hold more
    /// than it allows — those reserved for a coming run only once no other is left, and never
    /// the instances of `keep` (the version just started). Answers how many it stopped.
    pub(crate) fn evict_beyond(&mut self, capacity: Capacity, other_kb: u64, keep: &str) -> usize {
        let candidates = eviction_order(&self.by_version);
        let mut total_kb = candidates.iter().map(|c| c.memory_kb).sum::<u64>() + other_kb;
        let mut count = self.by_version.len();
        let mut evicted = 0;
        for EvictionCandidate {
            key, memory_kb: kb, ..
        } in candidates
        {
            let over_count = count > capacity.max_instances.max(1);
            let over_memory = total_kb > capacity.memory_kb;
            if !over_count && !over_memory {
                break;
            }
            if key == keep {
                continue;
            }
            self.by_version.remove(&key);
            count -= 1;
            evicted += 1;
            total_kb = total_kb.saturating_sub(kb);
            tracing::debug!(version = %key, memory_kb = kb, over_memory, "warm instance stopped (least recently used)");
        }
        evicted
    }
}

/// A warm instance slot as the LRU ranks it.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct EvictionCandidate {
    rank: EvictionRank,
    key: String,
    memory_kb: u64,
}

/// The order of eviction: slots nobody holds, least recently used first; then, only if that is
/// not enough, held ones, the one whose run comes last first (it can be started again before
/// its run more easily than the one about to fire).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum EvictionRank {
    Unheld { last_used: u64 },
    Held { run_at: std::cmp::Reverse<Instant> },
}

/// The slots in the order they are evicted (see [`EvictionRank`]).
fn eviction_order(slots: &HashMap<String, Arc<Slot>>) -> Vec<EvictionCandidate> {
    let now = Instant::now();
    let mut candidates: Vec<EvictionCandidate> = slots
        .iter()
        .map(|(key, slot)| EvictionCandidate {
            rank: match slot.reserved_for(now) {
                Some(run_at) => EvictionRank::Held {
                    run_at: std::cmp::Reverse(run_at),
                },
                None => EvictionRank::Unheld {
                    last_used: slot.last_used.load(Ordering::Relaxed),
                },
            },
            key: key.clone(),
            memory_kb: slot.memory_kb(),
        })
        .collect();
    candidates.sort();
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zygote::ZygoteSpec;

    /// A base process that is never started: the slots only hold it.
    fn base() -> Arc<BaseProcess> {
        Arc::new(BaseProcess::new(
            None,
            ZygoteSpec {
                python: "/nonexistent/python3".into(),
                runner: "/nonexistent/flowd_runner.py".into(),
                preload: Vec::new(),
                user: None,
                proxy: None,
            },
        ))
    }

    /// Slots used in the order of `keys`.
    fn used(keys: &[&str]) -> Slots {
        let base = base();
        let mut slots = Slots::default();
        for key in keys {
            slots.use_slot(key, &base, 1);
        }
        slots
    }

    fn kept(slots: &Slots) -> Vec<String> {
        let mut keys: Vec<String> = slots.by_version.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn at_most(max_instances: usize) -> Capacity {
        Capacity {
            max_instances,
            memory_kb: u64::MAX,
        }
    }

    fn reserve(slots: &Slots, key: &str, run_in: Duration) {
        slots.by_version[key].reserve(
            Reservation {
                run_in,
                grace: Duration::from_secs(5),
            },
            Instant::now(),
        );
    }

    #[test]
    fn beyond_the_count_the_least_recently_used_are_stopped_first() {
        let mut slots = used(&["a", "b", "c", "a"]);

        slots.evict_beyond(at_most(2), 0, "a");

        assert_eq!(kept(&slots), ["a", "c"]);
    }

    #[test]
    fn the_version_just_started_is_never_stopped() {
        let mut slots = used(&["a", "b"]);

        slots.evict_beyond(at_most(1), 0, "a");

        assert_eq!(kept(&slots), ["a"]);
    }

    #[test]
    fn a_reserved_slot_is_stopped_after_every_unreserved_one() {
        let mut slots = used(&["a", "b", "c"]);
        reserve(&slots, "a", Duration::from_secs(60));

        slots.evict_beyond(at_most(2), 0, "c");

        assert_eq!(kept(&slots), ["a", "c"]);
    }

    #[test]
    fn among_reserved_slots_the_one_whose_run_comes_last_is_stopped_first() {
        let mut slots = used(&["a", "b", "c"]);
        reserve(&slots, "a", Duration::from_secs(10));
        reserve(&slots, "b", Duration::from_secs(60));

        slots.evict_beyond(at_most(2), 0, "c");

        assert_eq!(kept(&slots), ["a", "c"]);
    }

    #[test]
    fn memory_held_outside_the_slots_counts_against_the_budget() {
        let mut slots = used(&["a", "b"]);
        let capacity = Capacity {
            max_instances: 10,
            memory_kb: 1024,
        };

        slots.evict_beyond(capacity, 1024, "b");
        assert_eq!(kept(&slots), ["a", "b"]);

        slots.evict_beyond(capacity, 1025, "b");
        assert_eq!(kept(&slots), ["b"]);
    }
}
