//! Remembering handovers, so a repeat within the dedup window creates
//! nothing and concurrent requests for one conversation create one task.
//!
//! The store is a trait so a shared implementation (one store for many
//! instances) can replace the in-process default without touching routes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// What a claim on a key found.
#[derive(Debug)]
pub enum Claim {
    /// Nobody handed this over: the caller must do it, then
    /// [`HandoverStore::complete`] or [`HandoverStore::release`].
    Acquired,
    /// Already handed over within the window: the first SID.
    Existing(String),
    /// Another request is handing it over right now. When a receiver is
    /// given it changes (or closes) when that request ends; otherwise poll.
    InProgress(Option<watch::Receiver<()>>),
}

/// Whether a store can be reached right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// Answering.
    Up,
    /// Unreachable: handovers are remembered in this process until it is back.
    Down,
    /// Not asked yet (just started).
    Connecting,
}

impl StoreState {
    /// `up`, `down` or `connecting`, as `/healthz?detail=true` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Connecting => "connecting",
        }
    }
}

/// What a store is and whether it answers, for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStatus {
    /// `memory` or `redis`.
    pub kind: &'static str,
    /// Whether it answers now.
    pub state: StoreState,
}

/// Where handovers are remembered. A store never refuses a handover: one
/// that cannot reach its backend answers from this process (fails open).
pub trait HandoverStore: Send + Sync + 'static {
    /// Atomically claim `key` unless it is handed over or in progress. The
    /// claim lapses after `lease`, so a request that died mid-handover
    /// cannot block its conversation for ever.
    fn claim<'a>(&'a self, key: &'a str, lease: Duration) -> BoxFuture<'a, Claim>;
    /// Record the SID of a successful handover for `ttl`.
    fn complete<'a>(&'a self, key: &'a str, sid: &'a str, ttl: Duration) -> BoxFuture<'a, ()>;
    /// Forget a claim whose handover failed, so the next attempt tries again.
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
    /// What the store is and whether it answers; the default suits an
    /// in-process store, which cannot be unreachable.
    fn status(&self) -> StoreStatus {
        StoreStatus {
            kind: "memory",
            state: StoreState::Up,
        }
    }
}

enum Entry {
    /// Being handed over until `lease_until`; dropping the sender wakes every waiter.
    InFlight {
        sender: watch::Sender<()>,
        lease_until: Instant,
    },
    /// Handed over, remembered until `expires`.
    Done { sid: String, expires: Instant },
}

/// How often the in-process store drops expired entries.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The clock the store reads; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The in-process store (the default): a map behind a mutex.
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    /// When expired entries are dropped next: a sweep costs a pass over
    /// every entry, so it runs once a second at most, not on every claim.
    next_sweep: Mutex<Instant>,
    clock: Clock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_clock(Arc::new(Instant::now))
    }
}

impl MemoryStore {
    /// A store reading time from `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            next_sweep: Mutex::new(clock()),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every update is a single insert or remove), so poisoning is ignored.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn claim_now(&self, key: &str, lease: Duration) -> Claim {
        let now = (self.clock)();
        let mut entries = self.lock();
        // Drop expired entries now and then, so memory follows the window.
        if let Ok(mut next_sweep) = self.next_sweep.try_lock()
            && *next_sweep <= now
        {
            entries.retain(|_, e| !matches!(e, Entry::Done { expires, .. } if *expires <= now));
            *next_sweep = now + SWEEP_INTERVAL;
        }
        match entries.get(key) {
            Some(Entry::Done { sid, expires }) if *expires > now => Claim::Existing(sid.clone()),
            Some(Entry::InFlight {
                sender,
                lease_until,
            }) if *lease_until > now => Claim::InProgress(Some(sender.subscribe())),
            _ => {
                let (sender, _) = watch::channel(());
                entries.insert(
                    key.to_owned(),
                    Entry::InFlight {
                        sender,
                        lease_until: now + lease,
                    },
                );
                Claim::Acquired
            }
        }
    }
}

impl HandoverStore for MemoryStore {
    fn claim<'a>(&'a self, key: &'a str, lease: Duration) -> BoxFuture<'a, Claim> {
        Box::pin(async move { self.claim_now(key, lease) })
    }

    fn complete<'a>(&'a self, key: &'a str, sid: &'a str, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let expires = (self.clock)() + ttl;
            self.lock().insert(
                key.to_owned(),
                Entry::Done {
                    sid: sid.to_owned(),
                    expires,
                },
            );
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.lock().remove(key);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(10);

    fn fake_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let reader = Arc::clone(&now);
        (Arc::new(move || *reader.lock().unwrap()), now)
    }

    fn block<T>(f: BoxFuture<'_, T>) -> T {
        futures_util::FutureExt::now_or_never(f).expect("memory store futures are ready at once")
    }

    #[test]
    fn claim_complete_then_repeat_returns_the_first_sid_until_expiry() {
        let (clock, now) = fake_clock();
        let store = MemoryStore::with_clock(clock);

        assert!(matches!(block(store.claim("CH1", LEASE)), Claim::Acquired));
        block(store.complete("CH1", "KD1", Duration::from_secs(600)));
        assert!(matches!(block(store.claim("CH1", LEASE)), Claim::Existing(sid) if sid == "KD1"));
        assert!(
            matches!(block(store.claim("CH2", LEASE)), Claim::Acquired),
            "other keys are independent"
        );

        *now.lock().unwrap() += Duration::from_secs(601);
        assert!(
            matches!(block(store.claim("CH1", LEASE)), Claim::Acquired),
            "expired entries are forgotten"
        );
    }

    #[test]
    fn a_second_claim_waits_and_is_woken_when_the_first_ends() {
        let store = MemoryStore::default();
        assert!(matches!(block(store.claim("CH1", LEASE)), Claim::Acquired));
        let Claim::InProgress(Some(mut waiter)) = block(store.claim("CH1", LEASE)) else {
            panic!("a concurrent claim must see the handover in progress");
        };

        block(store.release("CH1"));

        assert!(
            futures_util::FutureExt::now_or_never(waiter.changed()).is_some(),
            "release wakes waiters"
        );
        assert!(
            matches!(block(store.claim("CH1", LEASE)), Claim::Acquired),
            "a released claim can be retried"
        );
    }

    /// Expired entries leave memory with the next claim after a sweep interval,
    /// without a pass over the map on every claim.
    #[test]
    fn expired_entries_are_swept_at_most_once_a_second() {
        let (clock, now) = fake_clock();
        let store = MemoryStore::with_clock(clock);
        for i in 0..10 {
            let key = format!("CH{i}");
            assert!(matches!(block(store.claim(&key, LEASE)), Claim::Acquired));
            block(store.complete(&key, "KD", Duration::from_secs(5)));
        }
        let stored = |store: &MemoryStore| store.lock().len();
        assert_eq!(stored(&store), 10);

        *now.lock().unwrap() += Duration::from_secs(6);
        block(store.claim("fresh", LEASE));
        assert_eq!(
            stored(&store),
            1,
            "the expired ten are gone, the new claim stays"
        );

        block(store.complete("fresh", "KD", Duration::from_millis(500)));
        *now.lock().unwrap() += Duration::from_millis(500);
        block(store.claim("other", LEASE));
        assert_eq!(stored(&store), 2, "no second sweep within the interval");
        assert!(
            matches!(block(store.claim("fresh", LEASE)), Claim::Acquired),
            "an entry expires at the end of its time, swept or not"
        );
    }

    #[test]
    fn an_abandoned_claim_lapses_at_the_end_of_its_lease() {
        let (clock, now) = fake_clock();
        let store = MemoryStore::with_clock(clock);
        assert!(matches!(block(store.claim("CH1", LEASE)), Claim::Acquired));
        assert!(matches!(
            block(store.claim("CH1", LEASE)),
            Claim::InProgress(_)
        ));

        *now.lock().unwrap() += LEASE;

        assert!(matches!(block(store.claim("CH1", LEASE)), Claim::Acquired));
    }
}
