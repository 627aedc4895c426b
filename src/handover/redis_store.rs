//! The shared handover store on Redis, so a handover repeated on another
//! instance (another Fly.io machine, another region) still happens once.
//!
//! # Records
//!
//! One string per conversation or call, under `flexbridge:handover:{key}`:
//!
//! - `claim:{token}` with a lease: an instance is calling Twilio for it now.
//!   Written only when the key is absent, by a Lua script, so the check and
//!   the write are one step for every instance.
//! - `sid:{SID}` for the dedup window: handed over.
//!
//! Every claim has its own token, so a release after a failed handover
//! deletes the key only while it still holds that claim: a lease that
//! lapsed and was taken by another instance is left alone.
//!
//! # Waiting
//!
//! A request that finds another instance's claim gets
//! [`Claim::InProgress`] without a receiver: the caller polls until the SID
//! appears, the claim is released (then it tries itself) or its deadline
//! passes (then it answers `handover_in_progress`). Requests of this
//! instance first claim the key in the in-process store, so they queue
//! behind each other locally, are woken at once, and only one of them asks
//! Redis.
//!
//! # Failing open
//!
//! A customer must reach an agent even when the cache is down. Every Redis
//! call has a deadline of one second; when a call fails the store is marked
//! down and handovers are remembered in this instance's [`MemoryStore`].
//! While down no request waits for Redis: a background probe PINGs it twice
//! a second and marks it up when it answers (the connection manager
//! reconnects). Handovers made while it was down are deduplicated within
//! their instance only, and are written to Redis (if nobody else did) when
//! they complete after it is back.
//!
//! A call that timed out may still run when a stalled Redis wakes up; a
//! late claim written that way lapses with its lease like any abandoned one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, FromRedisValue, RedisError, Script, ScriptInvocation, Value};

use super::store::{Claim, HandoverStore, MemoryStore, StoreState, StoreStatus};
use crate::domain::RedisUrl;

/// Namespace of every key flexbridge writes, so a shared Redis stays readable.
const KEY_PREFIX: &str = "flexbridge:handover:";
/// The most one Redis call may take, a retry after a dropped connection
/// included. Same-region Redis answers in about a millisecond; a second
/// leaves room for a cross-region primary while bounding what a handover
/// waits before failing open.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a down store is asked whether it is back.
const PROBE_WHILE_DOWN: Duration = Duration::from_millis(500);
/// How often a healthy store is checked between requests. Requests notice
/// a failure themselves; this only keeps health and metrics true when idle,
/// at a few thousand commands a day (hosted Redis bills per command).
const PROBE_WHILE_UP: Duration = Duration::from_secs(30);
/// At most one "unreachable" warning per this period while Redis is down.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Claim `KEYS[1]` for `ARGV[1]` (our `claim:{token}`) with a lease of
/// `ARGV[2]` ms unless another value is there. Returns `{'', 0}` when the
/// claim is ours, else `{value, ms to live}`. Finding our own value counts
/// as acquired, so retrying after a lost answer is safe.
const CLAIM_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if (not current) or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'', 0}
end
return {current, redis.call('PTTL', KEYS[1])}
";

/// Delete `KEYS[1]` only while it still holds our claim `ARGV[1]`.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Why Redis could not be used, by [`RedisStore::connect`] at start-up or
/// by [`ping`] (`check-config --connect`). Handovers never see it: they
/// fail open.
#[derive(Debug, thiserror::Error)]
#[error("handover store unavailable: {0}")]
pub struct StoreError(pub String);

/// The handover store shared by every instance through Redis, failing open
/// to the in-process store when Redis cannot be reached.
pub struct RedisStore {
    inner: Arc<Inner>,
}

/// Who holds a claim this instance acquired, so it is completed or released
/// where it was taken.
enum Holder {
    /// In Redis, as this `claim:{token}` value.
    Redis(String),
    /// In this process only (Redis was down).
    Local,
}

struct Inner {
    /// Where Redis is; shown masked in logs.
    url: RedisUrl,
    /// One multiplexed connection for the process, re-established by the
    /// manager after it drops.
    connection: ConnectionManager,
    /// Serializes this instance's requests per key, keeps a copy of the
    /// SIDs it learns, and remembers handovers while Redis is down.
    local: MemoryStore,
    /// Claims this instance holds, by key, until completed or released.
    holders: Mutex<HashMap<String, Holder>>,
    /// A [`StoreState`]: while down, requests do not wait for Redis.
    state: AtomicU8,
    /// Keeps an outage to one warning a minute.
    warnings: RateLimit,
    claim_script: Script,
    release_script: Script,
}

impl RedisStore {
    /// A store on the Redis at `url`. Connects in the background: until
    /// Redis answers, handovers use it if they can and fail open if not.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or the client refuses the URL.
    pub fn connect(url: &RedisUrl) -> Result<Self, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError(
                "the Redis store needs a running tokio runtime".into(),
            ));
        }
        let client =
            redis::Client::open(url.expose()).map_err(|e| StoreError(url.scrub(&e.to_string())))?;
        // One connection attempt, no backoff: the probe keeps trying while
        // Redis is down, so a request never waits out a retry schedule.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError(url.scrub(&e.to_string())))?;
        let inner = Arc::new(Inner {
            url: url.clone(),
            connection,
            local: MemoryStore::default(),
            holders: Mutex::new(HashMap::new()),
            state: AtomicU8::new(StoreState::Connecting as u8),
            warnings: RateLimit::new(WARN_EVERY),
            claim_script: Script::new(CLAIM_SCRIPT),
            release_script: Script::new(RELEASE_SCRIPT),
        });
        crate::metrics::handover_store_up("redis", false);
        tokio::spawn(probe(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }
}

impl HandoverStore for RedisStore {
    fn claim<'a>(&'a self, key: &'a str, lease: Duration) -> BoxFuture<'a, Claim> {
        Box::pin(self.inner.claim(key, lease))
    }

    fn complete<'a>(&'a self, key: &'a str, sid: &'a str, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(self.inner.complete(key, sid, ttl))
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.inner.release(key))
    }

    fn status(&self) -> StoreStatus {
        StoreStatus {
            kind: "redis",
            state: self.inner.state(),
        }
    }
}

impl Inner {
    async fn claim(&self, key: &str, lease: Duration) -> Claim {
        match self.local.claim(key, lease).await {
            Claim::Acquired => {}
            other => return other,
        }
        if self.state() == StoreState::Down {
            self.hold(key, Holder::Local);
            return Claim::Acquired;
        }
        let record = record_key(key);
        // Unique across every instance, so a release deletes only its own claim.
        let value = format!("claim:{}", uuid::Uuid::new_v4().simple());
        let lease_ms = millis(lease);
        let found: Result<(String, i64), _> = self
            .run(self.claim_script.key(&record).arg(&value).arg(lease_ms))
            .await;
        match found {
            Ok((current, _)) if current.is_empty() => {
                self.mark_up();
                self.hold(key, Holder::Redis(value));
                Claim::Acquired
            }
            Ok((current, ttl_ms)) => {
                self.mark_up();
                match (current.strip_prefix("sid:"), u64::try_from(ttl_ms)) {
                    (Some(sid), Ok(ttl_ms)) if ttl_ms > 0 => {
                        // Remembered here too: repeats on this instance stop
                        // asking Redis, and survive an outage.
                        self.local
                            .complete(key, sid, Duration::from_millis(ttl_ms))
                            .await;
                        Claim::Existing(sid.to_owned())
                    }
                    (Some(sid), _) => {
                        self.local.release(key).await;
                        Claim::Existing(sid.to_owned())
                    }
                    (None, _) => {
                        self.local.release(key).await;
                        Claim::InProgress(None)
                    }
                }
            }
            Err(error) => {
                self.mark_down(&error);
                self.hold(key, Holder::Local);
                Claim::Acquired
            }
        }
    }

    async fn complete(&self, key: &str, sid: &str, ttl: Duration) {
        let holder = self.take(key);
        if self.state() != StoreState::Down {
            let record = record_key(key);
            let value = format!("sid:{sid}");
            let ttl_ms = millis(ttl);
            // Over our own claim unconditionally; a handover made while
            // Redis was down only where nobody has recorded one since.
            let only_if_absent = !matches!(holder, Some(Holder::Redis(_)));
            let (record, value) = (&record, &value);
            let written: Result<Value, _> = self
                .call(move |mut connection| {
                    let mut set = redis::cmd("SET");
                    set.arg(record).arg(value).arg("PX").arg(ttl_ms);
                    if only_if_absent {
                        set.arg("NX");
                    }
                    async move { set.query_async(&mut connection).await }
                })
                .await;
            match written {
                Ok(_) => self.mark_up(),
                Err(error) => self.mark_down(&error),
            }
        }
        self.local.complete(key, sid, ttl).await
    }

    async fn release(&self, key: &str) {
        if let Some(Holder::Redis(value)) = self.take(key)
            && self.state() != StoreState::Down
        {
            let record = record_key(key);
            let released: Result<i64, _> =
                self.run(self.release_script.key(&record).arg(&value)).await;
            match released {
                Ok(_) => self.mark_up(),
                // The claim lapses with its lease.
                Err(error) => self.mark_down(&error),
            }
        }
        self.local.release(key).await
    }

    /// Run a Lua script through [`Inner::call`].
    async fn run<T: FromRedisValue>(&self, script: &ScriptInvocation<'_>) -> Result<T, RedisError> {
        self.call(|mut connection| async move { script.invoke_async(&mut connection).await })
            .await
    }

    /// Run `op` on the shared connection within [`CALL_TIMEOUT`], once more
    /// if the connection had dropped (the manager reconnects in between).
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempts = async {
            match op(self.connection.clone()).await {
                Err(e) if (e.is_io_error() || e.is_connection_dropped()) && !e.is_timeout() => {
                    op(self.connection.clone()).await
                }
                result => result,
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, attempts)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
    }

    fn state(&self) -> StoreState {
        match self.state.load(Ordering::Acquire) {
            s if s == StoreState::Up as u8 => StoreState::Up,
            s if s == StoreState::Down as u8 => StoreState::Down,
            _ => StoreState::Connecting,
        }
    }

    fn mark_up(&self) {
        let before = self.state.swap(StoreState::Up as u8, Ordering::AcqRel);
        if before != StoreState::Up as u8 {
            crate::metrics::handover_store_up("redis", true);
            let how = if before == StoreState::Connecting as u8 {
                "connected"
            } else {
                "reachable again: handovers are shared across instances"
            };
            tracing::info!(store = %self.url, "handover store {how}");
        }
    }

    fn mark_down(&self, error: &RedisError) {
        self.state.store(StoreState::Down as u8, Ordering::Release);
        crate::metrics::handover_store_up("redis", false);
        if self.warnings.allow() {
            tracing::warn!(
                store = %self.url,
                error.message = %self.url.scrub(&error.to_string()),
                "handover store unreachable: handovers go on, remembered by this instance only until it answers"
            );
        }
    }

    fn hold(&self, key: &str, holder: Holder) {
        self.holders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), holder);
    }

    fn take(&self, key: &str) -> Option<Holder> {
        self.holders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
    }
}

/// Ask Redis whether it is there: every [`PROBE_WHILE_DOWN`] while it is
/// not up (whoever noticed), every [`PROBE_WHILE_UP`] while it is. Ends
/// when the store is dropped.
async fn probe(store: Weak<Inner>) {
    let mut last_ping: Option<Instant> = None;
    loop {
        let Some(inner) = store.upgrade() else {
            return;
        };
        let due = inner.state() != StoreState::Up
            || last_ping.is_none_or(|at| at.elapsed() >= PROBE_WHILE_UP);
        if due {
            last_ping = Some(Instant::now());
            let answer: Result<String, _> = inner
                .call(|mut connection| async move {
                    redis::cmd("PING").query_async(&mut connection).await
                })
                .await;
            match answer {
                Ok(_) => inner.mark_up(),
                Err(error) => inner.mark_down(&error),
            }
        }
        drop(inner);
        tokio::time::sleep(PROBE_WHILE_DOWN).await;
    }
}

/// Connect to `url` and PING it once, for `flexbridge check-config --connect`.
/// Returns how long the round trip took.
///
/// # Errors
/// Why Redis could not be reached, with any password masked.
pub async fn ping(url: &RedisUrl, timeout: Duration) -> Result<Duration, StoreError> {
    let started = Instant::now();
    let client =
        redis::Client::open(url.expose()).map_err(|e| StoreError(url.scrub(&e.to_string())))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let attempt = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(_)) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(StoreError(url.scrub(&e.to_string()))),
        Err(_) => Err(StoreError(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

fn record_key(key: &str) -> String {
    format!("{KEY_PREFIX}{key}")
}

/// Whole milliseconds, at least 1 (Redis refuses an expiry of 0).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Lets one event through per period.
struct RateLimit {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl RateLimit {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    fn allow(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if now.duration_since(at) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_lets_one_event_through_per_period() {
        let limit = RateLimit::new(Duration::from_secs(60));
        assert!(limit.allow());
        assert!(!limit.allow());
        let fast = RateLimit::new(Duration::ZERO);
        assert!(fast.allow());
        assert!(fast.allow());
    }

    #[test]
    fn expiries_are_whole_positive_milliseconds() {
        assert_eq!(millis(Duration::from_secs(600)), 600_000);
        assert_eq!(millis(Duration::ZERO), 1);
    }

    #[test]
    fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
        let url = RedisUrl::parse("redis://127.0.0.1:1").unwrap();
        assert!(RedisStore::connect(&url).is_err());
    }
}
