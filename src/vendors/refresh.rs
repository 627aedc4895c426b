//! A value fetched on demand and shared by every caller: reused for a fixed
//! time, then refreshed by one fetch that all concurrent callers wait for
//! (single flight). A failed fetch reaches the callers already waiting for it
//! and is never kept, so the next caller fetches again.
//!
//! The fetch runs inside a shared future rather than in one caller's task:
//! when the caller that started it gives up (Twilio hung up on the webhook),
//! the next waiter drives the same fetch on instead of starting another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

use crate::handover::Clock;

type Flight<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;

enum Slot<T, E> {
    /// Nothing usable: never fetched, or the last fetch failed.
    Empty,
    /// A value callers may use until `until`.
    Fresh { value: T, until: Instant },
    /// A fetch in progress that new callers join while its value would still
    /// be fresh (`until`); `id` tells it from the fetches before it.
    Fetching {
        flight: Flight<T, E>,
        until: Instant,
        id: u64,
    },
}

/// A shared, time-limited value with single-flight refresh.
pub struct RefreshCache<T, E> {
    slot: Arc<Mutex<Slot<T, E>>>,
    /// The id of the next fetch.
    next_id: Arc<AtomicU64>,
    reuse_for: Duration,
    clock: Clock,
}

// Manual impl: clones share one slot, and a derive would require `T: Clone`
// and `E: Clone` for the handle itself.
impl<T, E> Clone for RefreshCache<T, E> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
            next_id: Arc::clone(&self.next_id),
            reuse_for: self.reuse_for,
            clock: Arc::clone(&self.clock),
        }
    }
}

impl<T, E> RefreshCache<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// A cache whose values are reused for `reuse_for` after their fetch started.
    pub fn new(reuse_for: Duration) -> Self {
        Self::with_clock(reuse_for, Arc::new(Instant::now))
    }

    /// Like [`RefreshCache::new`], reading time from `clock` (tests move it).
    pub fn with_clock(reuse_for: Duration, clock: Clock) -> Self {
        Self {
            slot: Arc::new(Mutex::new(Slot::Empty)),
            next_id: Arc::new(AtomicU64::new(0)),
            reuse_for,
            clock,
        }
    }

    /// The cached value while it is fresh; otherwise the result of the fetch
    /// in progress, or of a new one made by `fetch`.
    ///
    /// The reuse window starts when the fetch starts, not when it ends: a
    /// value's lifetime at the vendor begins when the vendor issues it.
    ///
    /// # Errors
    /// The fetch's error, shared by every caller that waited for that fetch.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let (flight, replaced) = {
            let mut slot = lock(&self.slot);
            let now = (self.clock)();
            match &*slot {
                Slot::Fresh { value, until } if now < *until => return Ok(value.clone()),
                // A fetch nobody drove on since its callers gave up would
                // hand out a value issued too long ago: start another.
                Slot::Fetching { flight, until, .. } if now < *until => (flight.clone(), None),
                Slot::Fresh { .. } | Slot::Fetching { .. } | Slot::Empty => {
                    let until = now + self.reuse_for;
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let flight = self.start(fetch(), until, id);
                    let fetching = Slot::Fetching {
                        flight: flight.clone(),
                        until,
                        id,
                    };
                    (flight, Some(std::mem::replace(&mut *slot, fetching)))
                }
            }
        };
        // Outside the lock: dropping a stale fetch runs its `Outcome`, which
        // takes the lock.
        drop(replaced);
        flight.await
    }

    /// A shared fetch that records its own outcome in the slot when it ends.
    fn start(
        &self,
        fetch: impl Future<Output = Result<T, E>> + Send + 'static,
        until: Instant,
        id: u64,
    ) -> Flight<T, E> {
        // Weak: the slot holds the flight, so a strong reference back would
        // keep both alive for ever if nobody ever awaited the flight again.
        let slot: Weak<Mutex<Slot<T, E>>> = Arc::downgrade(&self.slot);
        async move {
            // Should the fetch panic, its flight must not stay in the slot:
            // every later caller would join it and panic in turn.
            let mut outcome = Outcome {
                slot,
                id,
                value: None,
                until,
            };
            let result = fetch.await;
            outcome.value = Some(result.as_ref().ok().cloned());
            result
        }
        .boxed()
        .shared()
    }
}

/// Writes a fetch's outcome into the slot when the fetch ends, however it
/// ends: its value, or [`Slot::Empty`] after an error or a panic. Only while
/// the slot still holds that fetch: a later one has taken its place otherwise.
struct Outcome<T, E> {
    slot: Weak<Mutex<Slot<T, E>>>,
    id: u64,
    /// `None` until the fetch returns, then its value if it succeeded.
    value: Option<Option<T>>,
    until: Instant,
}

impl<T, E> Drop for Outcome<T, E> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.upgrade() else {
            return;
        };
        let mut slot = lock(&slot);
        if matches!(&*slot, Slot::Fetching { id, .. } if *id == self.id) {
            *slot = match self.value.take().flatten() {
                Some(value) => Slot::Fresh {
                    value,
                    until: self.until,
                },
                None => Slot::Empty,
            };
        }
    }
}

fn lock<T, E>(slot: &Mutex<Slot<T, E>>) -> MutexGuard<'_, Slot<T, E>> {
    // Every update is a single assignment, so a panic elsewhere cannot leave
    // the slot half-written: poisoning carries no meaning here.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const WINDOW: Duration = Duration::from_secs(240);

    fn fake_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let reader = Arc::clone(&now);
        (Arc::new(move || *reader.lock().unwrap()), now)
    }

    /// A fetch that counts itself, takes a few milliseconds (so every caller
    /// polled meanwhile joins it) and returns `result`.
    fn counted(
        fetches: &Arc<AtomicUsize>,
        result: Result<&'static str, &'static str>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<&'static str, &'static str>> {
        let fetches = Arc::clone(fetches);
        move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                result
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn fifty_concurrent_callers_share_one_fetch() {
        let cache = RefreshCache::new(WINDOW);
        let fetches = Arc::new(AtomicUsize::new(0));

        let results = futures_util::future::join_all(
            (0..50).map(|_| cache.get(counted(&fetches, Ok("wss://a")))),
        )
        .await;

        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| *r == Ok("wss://a")), "{results:?}");
    }

    #[tokio::test]
    async fn a_value_is_reused_within_the_window_and_fetched_again_after_it() {
        let (clock, now) = fake_clock();
        let cache = RefreshCache::with_clock(WINDOW, clock);
        let fetches = Arc::new(AtomicUsize::new(0));

        assert_eq!(cache.get(counted(&fetches, Ok("first"))).await, Ok("first"));
        *now.lock().unwrap() += WINDOW - Duration::from_millis(1);
        assert_eq!(
            cache.get(counted(&fetches, Ok("second"))).await,
            Ok("first")
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "reused within the window"
        );

        *now.lock().unwrap() += Duration::from_millis(1);
        assert_eq!(
            cache.get(counted(&fetches, Ok("second"))).await,
            Ok("second")
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "fetched again at the end"
        );
    }

    #[tokio::test]
    async fn the_window_starts_when_the_fetch_starts() {
        let (clock, now) = fake_clock();
        let cache = RefreshCache::with_clock(WINDOW, clock);
        let slow_now = Arc::clone(&now);

        let first = cache
            .get(move || async move {
                *slow_now.lock().unwrap() += Duration::from_secs(10);
                Ok::<_, ()>("slow")
            })
            .await;
        *now.lock().unwrap() += WINDOW - Duration::from_secs(10);
        let second = cache.get(|| async { Ok("fresh") }).await;

        assert_eq!((first, second), (Ok("slow"), Ok("fresh")));
    }

    #[tokio::test]
    async fn a_failure_reaches_every_waiter_once_and_is_not_kept() {
        let cache = RefreshCache::new(WINDOW);
        let fetches = Arc::new(AtomicUsize::new(0));

        let failed = futures_util::future::join_all(
            (0..10).map(|_| cache.get(counted(&fetches, Err("refused")))),
        )
        .await;
        let retried = cache.get(counted(&fetches, Ok("wss://b"))).await;

        assert!(failed.iter().all(|r| *r == Err("refused")), "{failed:?}");
        assert_eq!(retried, Ok("wss://b"));
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "one failed fetch, one retry"
        );
    }

    /// Start a fetch of `value` that waits for a gate, give it up after one
    /// poll (as a caller Twilio hung up on would), then open the gate.
    fn start_and_abandon(
        cache: &RefreshCache<&'static str, &'static str>,
        fetches: &Arc<AtomicUsize>,
        value: &'static str,
    ) {
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let counter = Arc::clone(fetches);
        let mut first = Box::pin(cache.get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let _ = gate.await;
                Ok(value)
            }
        }));
        assert!(
            (&mut first).now_or_never().is_none(),
            "the fetch is under way"
        );
        drop(first);
        let _ = release.send(());
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_fetch_to_the_others() {
        let cache = RefreshCache::new(WINDOW);
        let fetches = Arc::new(AtomicUsize::new(0));

        start_and_abandon(&cache, &fetches, "wss://c");
        let second = cache.get(counted(&fetches, Ok("other"))).await;

        assert_eq!(second, Ok("wss://c"));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_fetch_that_panics_is_not_kept() {
        let cache = RefreshCache::new(WINDOW);
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let panicking = cache.get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if counter.load(Ordering::SeqCst) > 0 {
                    panic!("a bug in the fetch");
                }
                Ok::<&'static str, &'static str>("never")
            }
        });
        let panicked = std::panic::AssertUnwindSafe(panicking).catch_unwind().await;

        let next = cache.get(counted(&fetches, Ok("wss://d"))).await;

        assert!(panicked.is_err(), "the fetch panicked");
        assert_eq!(next, Ok("wss://d"), "the next caller fetches again");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_fetch_abandoned_past_the_window_is_not_joined() {
        let (clock, now) = fake_clock();
        let cache = RefreshCache::with_clock(WINDOW, clock);
        let fetches = Arc::new(AtomicUsize::new(0));
        start_and_abandon(&cache, &fetches, "wss://issued-long-ago");

        *now.lock().unwrap() += WINDOW;
        let later = cache.get(counted(&fetches, Ok("wss://new"))).await;
        let again = cache.get(counted(&fetches, Ok("wss://third"))).await;

        assert_eq!(later, Ok("wss://new"));
        assert_eq!(again, Ok("wss://new"), "the new value is kept");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }
}
