//! The shared handover store (`HANDOVER_STORE=redis://…`) against a real
//! `redis-server`: two flexbridge instances sharing one Redis and one
//! stand-in for Twilio, races, failures, expiry, a Redis outage and its
//! recovery, and `check-config`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flexbridge::domain::RedisUrl;
use flexbridge::handover::{Claim, HandoverStore, RedisStore, StoreState};
use futures_util::FutureExt as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::check_config::check_config;
use crate::flex_handover::{IS, TOOL_KEY, json_of, spawn_tools_app};
use crate::helpers::{TEST_AUTH_TOKEN, TestApp, spawn_app};
use crate::process::{Process, closed_port, log_events, start_binary};
use crate::redis_server::{REDIS_PASSWORD, RedisServer};

/// A conversation SID of its own for each test step.
fn conversation(n: u8) -> String {
    format!("CH{n:032x}")
}

fn session(conversation: &str) -> String {
    format!("webhook:conversations__{IS}/{conversation}")
}

/// Where flexbridge keeps the handover of `conversation` in Redis.
fn record(conversation: &str) -> String {
    format!("flexbridge:handover:flex:{conversation}")
}

/// The stand-in for Twilio: every interaction created gets a new SID.
struct NewInteractions {
    created: AtomicUsize,
    delay: Duration,
}

impl Respond for NewInteractions {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(json!({ "sid": format!("KD{n:032x}") }))
            .set_delay(self.delay)
    }
}

async fn mount_new_interactions(twilio: &MockServer, delay: Duration) {
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(NewInteractions {
            created: AtomicUsize::new(0),
            delay,
        })
        .mount(twilio)
        .await;
}

async fn interactions_created(twilio: &MockServer) -> usize {
    twilio
        .received_requests()
        .await
        .expect("requests are recorded")
        .iter()
        .filter(|r| r.url.path() == "/v1/Interactions")
        .count()
}

/// Hand `conversation` over through the instance at `base`.
async fn handover(client: &reqwest::Client, base: &str, conversation: &str) -> (u16, Value) {
    json_of(
        client
            .post(format!("{base}/tools/flex-handover"))
            .bearer_auth(TOOL_KEY)
            .header("X-Session-Id", session(conversation))
            .header("X-Identity", "phone:+14155550100")
            .json(&json!({}))
            .send()
            .map(|r| r.expect("request reaches the app")),
    )
    .await
}

impl TestApp {
    async fn hand_over(&self, conversation: &str) -> (u16, Value) {
        handover(&self.client, &self.address, conversation).await
    }
}

/// `/healthz?detail=true` of the instance at `base`.
async fn health_detail(client: &reqwest::Client, base: &str) -> Value {
    let response = client
        .get(format!("{base}/healthz?detail=true"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(response.status().as_u16(), 200, "healthz is always 200");
    response.json().await.expect("detail is JSON")
}

/// Poll the detail until the store is in `state`, for at most `limit`;
/// return how long that took.
async fn wait_for_store_state(
    client: &reqwest::Client,
    base: &str,
    state: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let detail = health_detail(client, base).await;
        if detail["handover_store"]["state"] == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "store not {state} after {limit:?}: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics are text")
}

/// Two instances on one Redis: 20 concurrent handovers of one conversation,
/// alternating between them, create exactly one interaction; the other 19
/// answer `already_handed_over` with its SID.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn twenty_concurrent_handovers_across_two_instances_create_exactly_one_interaction() {
    let redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::from_millis(300)).await;
    let url = redis.url();
    let env = [("HANDOVER_STORE", url.as_str())];
    let a = spawn_tools_app(&twilio, &env).await;
    let b = spawn_tools_app(&twilio, &env).await;
    let ch = conversation(1);

    let answers = futures_util::future::join_all((0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.hand_over(&ch)
    }))
    .await;

    assert_eq!(interactions_created(&twilio).await, 1);
    let sid = format!("KD{:032x}", 1);
    let mut handed_over = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["interaction_sid"], sid.as_str(), "{body}");
        match body["status"].as_str() {
            Some("handed_over") => handed_over += 1,
            Some("already_handed_over") => {}
            _ => panic!("unexpected answer {body}"),
        }
    }
    assert_eq!(handed_over, 1, "{answers:?}");
    assert_eq!(redis.get(&record(&ch)).await, Some(format!("sid:{sid}")));
    let ttl = redis.pttl(&record(&ch)).await;
    assert!(
        (590_000..=600_000).contains(&ttl),
        "remembered for HANDOVER_DEDUP_SECONDS: {ttl} ms"
    );
}

/// A handover that failed on one instance leaves no claim behind: a retry on
/// the other instance creates the interaction, and a third attempt anywhere
/// finds it.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_failed_handover_releases_its_claim_so_a_retry_on_another_instance_succeeds() {
    let redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&twilio)
        .await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let url = redis.url();
    let env = [("HANDOVER_STORE", url.as_str())];
    let a = spawn_tools_app(&twilio, &env).await;
    let b = spawn_tools_app(&twilio, &env).await;
    let ch = conversation(2);

    let (failed, body) = a.hand_over(&ch).await;
    assert_eq!(failed, 502, "{body}");
    assert_eq!(
        redis.get(&record(&ch)).await,
        None,
        "the claim is released at once, not left to lapse"
    );

    let (status, retried) = b.hand_over(&ch).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "handed_over");
    let (status, repeat) = a.hand_over(&ch).await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["status"], "already_handed_over");
    assert_eq!(repeat["interaction_sid"], retried["interaction_sid"]);
    assert_eq!(interactions_created(&twilio).await, 2, "the 500, then one");
}

/// A claim held elsewhere for longer than a request can wait (an instance
/// that died mid-handover): the request waits `UPSTREAM_TIMEOUT_MS`, then
/// answers 409 `handover_in_progress` without calling Twilio; once the lease
/// lapses the handover goes through.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_claim_held_elsewhere_past_the_wait_answers_409_then_lapses() {
    let redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let url = redis.url();
    let app = spawn_tools_app(
        &twilio,
        &[
            ("HANDOVER_STORE", url.as_str()),
            ("UPSTREAM_TIMEOUT_MS", "400"),
        ],
    )
    .await;
    let ch = conversation(12);
    redis
        .set(&record(&ch), "claim:an-instance-that-died", 1500)
        .await;

    let started = Instant::now();
    let (status, body) = app.hand_over(&ch).await;
    let waited = started.elapsed();

    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "handover_in_progress");
    // It waits out UPSTREAM_TIMEOUT_MS, not the claim's 1.5 s lease.
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500),
        "waited {waited:?}"
    );
    assert_eq!(interactions_created(&twilio).await, 0);

    redis
        .wait_until_gone(&record(&ch), Duration::from_secs(3))
        .await;
    let (status, body) = app.hand_over(&ch).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("handed_over"))
    );
}

/// With `HANDOVER_DEDUP_SECONDS=1` the record expires in Redis, and then a
/// new handover creates a new interaction, whichever instance gets it.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn shared_handovers_expire_after_the_dedup_window() {
    let redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let url = redis.url();
    let env = [
        ("HANDOVER_STORE", url.as_str()),
        ("HANDOVER_DEDUP_SECONDS", "1"),
    ];
    let a = spawn_tools_app(&twilio, &env).await;
    let b = spawn_tools_app(&twilio, &env).await;
    let ch = conversation(3);

    let (_, first) = a.hand_over(&ch).await;
    let asked = Instant::now();
    let (_, repeat) = b.hand_over(&ch).await;
    let repeat_took = asked.elapsed();
    assert_eq!(first["status"], "handed_over");
    assert_eq!(repeat["status"], "already_handed_over");
    let ttl = redis.pttl(&record(&ch)).await;
    assert!((1..=1000).contains(&ttl), "{ttl} ms");

    redis
        .wait_until_gone(&record(&ch), Duration::from_secs(3))
        .await;
    // Instance b keeps a copy for the time to live Redis told it, counted
    // from when the answer reached it: it expires at most as long after the
    // record as b's request took (and a millisecond of Redis's rounding).
    tokio::time::sleep(repeat_took + Duration::from_millis(2)).await;

    let (_, after) = b.hand_over(&ch).await;
    assert_eq!(after["status"], "handed_over", "{after}");
    assert_ne!(after["interaction_sid"], first["interaction_sid"]);
    assert_eq!(interactions_created(&twilio).await, 2);
}

/// A store of its own on `redis`, as another instance would have.
fn store_on(redis: &RedisServer) -> RedisStore {
    let url = RedisUrl::parse(&redis.url()).expect("a valid URL");
    RedisStore::connect(&url).expect("a store")
}

/// Claims carry a token: releasing a claim whose lease lapsed (and was taken
/// by another instance) leaves the other instance's claim alone.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_release_deletes_only_the_claim_it_made() {
    let redis = RedisServer::start().await;
    let (a, b) = (store_on(&redis), store_on(&redis));
    let key = "flex:CH-lease";

    assert!(matches!(
        a.claim(key, Duration::from_millis(150)).await,
        Claim::Acquired
    ));
    assert!(matches!(
        b.claim(key, Duration::from_secs(10)).await,
        Claim::InProgress(None)
    ));
    redis
        .wait_until_gone(
            &format!("flexbridge:handover:{key}"),
            Duration::from_secs(2),
        )
        .await;
    assert!(matches!(
        b.claim(key, Duration::from_secs(10)).await,
        Claim::Acquired
    ));

    a.release(key).await;

    let held = redis.get(&format!("flexbridge:handover:{key}")).await;
    assert!(
        held.as_deref().is_some_and(|v| v.starts_with("claim:")),
        "b's claim survives a's late release: {held:?}"
    );
    assert!(matches!(
        a.claim(key, Duration::from_secs(10)).await,
        Claim::InProgress(None)
    ));
    b.complete(key, "KD-b", Duration::from_secs(60)).await;
    assert!(matches!(
        a.claim(key, Duration::from_secs(10)).await,
        Claim::Existing(sid) if sid == "KD-b"
    ));
}

/// A handover another instance recorded is remembered where it was found,
/// for as long as Redis keeps it: repeats there no longer ask Redis (and
/// survive an outage).
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_handover_found_in_redis_is_remembered_where_it_was_found() {
    let redis = RedisServer::start().await;
    let store = store_on(&redis);
    let key = "flex:CH-found";
    let record = format!("flexbridge:handover:{key}");
    redis.set(&record, "sid:KD-first", 60_000).await;

    let found = store.claim(key, Duration::from_secs(10)).await;
    redis.set(&record, "sid:KD-changed", 60_000).await;
    let again = store.claim(key, Duration::from_secs(10)).await;

    assert!(matches!(found, Claim::Existing(sid) if sid == "KD-first"));
    assert!(
        matches!(&again, Claim::Existing(sid) if sid == "KD-first"),
        "answered from Redis again: {again:?}"
    );
}

/// Claim `key` in `store`, which must get it.
async fn assert_acquired(store: &RedisStore, key: &str) {
    let claim = store.claim(key, Duration::from_secs(10)).await;
    assert!(matches!(claim, Claim::Acquired), "{key}: {claim:?}");
}

/// Wait until `store`'s probe finds Redis answering, for at most 5 s.
async fn wait_until_up(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.status().state != StoreState::Up {
        assert!(Instant::now() < deadline, "the probe never found Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until Redis first answers, the store says it is connecting
/// (`/healthz?detail=true`), then up.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_store_is_connecting_until_redis_first_answers() {
    let redis = RedisServer::start().await;
    redis.signal("STOP");

    let store = store_on(&redis);
    let first = store.status().state.as_str();
    redis.signal("CONT");
    wait_until_up(&store).await;

    assert_eq!((first, store.status().state.as_str()), ("connecting", "up"));
}

/// Redis lost between a handover's claim and its end: the handover is still
/// remembered here (a repeat finds it), a released one can be made again
/// here, and each store that met the failure says Redis is down.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn redis_lost_after_the_claim_still_leaves_the_handover_remembered_here() {
    let mut redis = RedisServer::start().await;
    let (a, b) = (store_on(&redis), store_on(&redis));
    assert_acquired(&a, "flex:CH-done").await;
    assert_acquired(&b, "flex:CH-failed").await;
    redis.kill();

    a.complete("flex:CH-done", "KD-done", Duration::from_secs(60))
        .await;
    b.release("flex:CH-failed").await;

    assert_eq!(a.status().state, StoreState::Down);
    assert_eq!(b.status().state, StoreState::Down);
    let repeat = a.claim("flex:CH-done", Duration::from_secs(10)).await;
    assert!(
        matches!(&repeat, Claim::Existing(sid) if sid == "KD-done"),
        "{repeat:?}"
    );
    assert_acquired(&b, "flex:CH-failed").await;
}

/// A handover claimed here while Redis was down and finished after it came
/// back is written only where no instance has recorded one since; one that
/// failed leaves Redis alone.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_handover_made_during_an_outage_never_overwrites_one_recorded_since() {
    let mut redis = RedisServer::start().await;
    let store = store_on(&redis);
    redis.kill();
    assert_acquired(&store, "flex:CH-taken").await;
    assert_acquired(&store, "flex:CH-free").await;
    assert_acquired(&store, "flex:CH-failed").await;
    assert_eq!(store.status().state, StoreState::Down);
    redis.restart().await;
    wait_until_up(&store).await;
    let (taken, free) = (record("CH-taken"), record("CH-free"));
    let failed = record("CH-failed");
    redis.set(&taken, "sid:KD-elsewhere", 60_000).await;
    redis.set(&failed, "sid:KD-elsewhere", 60_000).await;

    let ttl = Duration::from_secs(60);
    store.complete("flex:CH-taken", "KD-here", ttl).await;
    store.complete("flex:CH-free", "KD-here", ttl).await;
    store.release("flex:CH-failed").await;

    assert_eq!(redis.get(&taken).await.as_deref(), Some("sid:KD-elsewhere"));
    assert_eq!(redis.get(&free).await.as_deref(), Some("sid:KD-here"));
    assert_eq!(
        redis.get(&failed).await.as_deref(),
        Some("sid:KD-elsewhere")
    );
    assert!(redis.pttl(&free).await > 0);
}

/// A connection Redis dropped (it restarted) costs nothing: the call is
/// tried once more on the new connection, the claim is shared and the store
/// stays up.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_dropped_connection_is_tried_once_more_and_the_store_stays_up() {
    let mut redis = RedisServer::start().await;
    let store = store_on(&redis);
    let before = store.claim("flex:CH-before", Duration::from_secs(10)).await;
    assert!(matches!(before, Claim::Acquired), "{before:?}");
    redis.restart().await;

    let after = store.claim("flex:CH-after", Duration::from_secs(10)).await;

    assert!(matches!(after, Claim::Acquired), "{after:?}");
    assert_eq!(store.status().state, StoreState::Up);
    let held = redis.get("flexbridge:handover:flex:CH-after").await;
    assert!(held.is_some_and(|v| v.starts_with("claim:")));
}

/// How many times Redis was asked `command` (lower case), answered or refused.
async fn calls(redis: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut redis.connection().await)
        .await
        .expect("INFO answers");
    let prefix = format!("cmdstat_{command}:");
    let Some(stats) = info
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
    else {
        return 0;
    };
    stats
        .split(',')
        .filter_map(|field| field.split_once('='))
        .filter(|(name, _)| matches!(*name, "calls" | "rejected_calls"))
        .filter_map(|(_, count)| count.parse::<u64>().ok())
        .sum()
}

/// An error Redis answers with (here: out of memory) is not asked again:
/// only a dropped connection is worth a second try. The handover goes on in
/// this instance.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn an_error_redis_answers_with_is_not_tried_again() {
    let redis = RedisServer::start().await;
    let store = store_on(&redis);
    // The first claim loads the script: the next one is a single EVALSHA.
    let first = store.claim("flex:CH-first", Duration::from_secs(10)).await;
    assert!(matches!(first, Claim::Acquired), "{first:?}");
    let mut admin = redis.connection().await;
    for (name, value) in [("maxmemory-policy", "noeviction"), ("maxmemory", "1")] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query_async(&mut admin)
            .await
            .expect("CONFIG SET answers");
    }
    let before = calls(&redis, "evalsha").await;

    let full = store.claim("flex:CH-full", Duration::from_secs(10)).await;

    assert!(matches!(full, Claim::Acquired), "{full:?}");
    assert_eq!(calls(&redis, "evalsha").await - before, 1);
    assert_eq!(redis.get("flexbridge:handover:flex:CH-full").await, None);
}

/// While Redis is up the probe is quiet (one PING every 30 s); it asks
/// twice a second only while the store is not up.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn the_probe_is_quiet_while_redis_is_up() {
    let redis = RedisServer::start().await;
    let store = store_on(&redis);
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.status().state != StoreState::Up {
        assert!(Instant::now() < deadline, "the store never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let before = calls(&redis, "ping").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(calls(&redis, "ping").await, before);
}

/// A frozen Redis (it accepts connections but never answers, like a network
/// black hole) costs a handover about one second, then the store is down and
/// handovers go on at full speed; thawed, the store is shared again.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_redis_that_stops_answering_costs_a_handover_at_most_about_a_second() {
    let redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let url = redis.url();
    let env = [("HANDOVER_STORE", url.as_str())];
    let a = spawn_tools_app(&twilio, &env).await;
    let b = spawn_tools_app(&twilio, &env).await;
    wait_for_store_state(&a.client, &a.address, "up", Duration::from_secs(5)).await;

    redis.signal("STOP");
    let started = Instant::now();
    let (status, first) = a.hand_over(&conversation(4)).await;
    let first_took = started.elapsed();
    let started = Instant::now();
    let (_, second) = a.hand_over(&conversation(5)).await;
    let second_took = started.elapsed();

    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "handed_over");
    assert_eq!(second["status"], "handed_over");
    eprintln!("frozen Redis: first handover {first_took:?}, next {second_took:?}");
    // Each bound is the least time the wrong behaviour would take (a store
    // call waited out costs its 1 s timeout), so only a stall that long can
    // fail a right one: the first handover waits out one call, not two; the
    // next waits out none.
    assert!(first_took < Duration::from_secs(2), "{first_took:?}");
    assert!(second_took < Duration::from_secs(1), "{second_took:?}");
    assert_eq!(
        health_detail(&a.client, &a.address).await["handover_store"]["state"],
        "down"
    );

    redis.signal("CONT");
    let recovered = wait_for_store_state(&a.client, &a.address, "up", Duration::from_secs(5)).await;
    eprintln!("thawed Redis: store up again after {recovered:?}");
    let (_, shared) = a.hand_over(&conversation(6)).await;
    let (_, seen) = b.hand_over(&conversation(6)).await;
    assert_eq!(shared["status"], "handed_over");
    assert_eq!(seen["status"], "already_handed_over", "{seen}");
}

/// The environment of an instance run as a process against `twilio` and `redis`.
fn process_env<'a>(twilio: &'a str, redis: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut env = crate::flex_handover::tools_env(twilio);
    env.extend([
        ("TWILIO_AUTH_TOKEN", TEST_AUTH_TOKEN),
        ("HANDOVER_STORE", redis),
    ]);
    env
}

/// Redis killed mid-test: two real processes keep handing over (each
/// remembering its own), say the store is down in `/healthz?detail=true`
/// and `/metrics` while `/healthz` stays `200 ok`, warn once, and never
/// log the password. Redis restarted on the same port: both recover, and
/// dedup holds across them again.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn a_redis_outage_fails_open_and_the_shared_store_recovers_when_redis_returns() {
    let mut redis = RedisServer::start().await;
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let (twilio_uri, redis_url) = (twilio.uri(), redis.url());
    let env = process_env(&twilio_uri, &redis_url);
    let mut a = start_binary(&[], &env).await;
    let mut b = start_binary(&[], &env).await;
    let client = reqwest::Client::new();
    for p in [&a, &b] {
        wait_for_store_state(&client, &p.address, "up", Duration::from_secs(5)).await;
    }

    // Shared while Redis is up.
    let (_, first) = handover(&client, &a.address, &conversation(7)).await;
    let (_, repeat) = handover(&client, &b.address, &conversation(7)).await;
    assert_eq!(first["status"], "handed_over");
    assert_eq!(repeat["status"], "already_handed_over");

    redis.kill();
    let started = Instant::now();
    let (status, during) = handover(&client, &a.address, &conversation(8)).await;
    let failover = started.elapsed();
    eprintln!("Redis killed: the next handover took {failover:?}");
    assert_eq!(status, 200, "{during}");
    assert_eq!(during["status"], "handed_over");
    // Waiting for the dead Redis would cost the store call's 1 s timeout.
    assert!(failover < Duration::from_secs(1), "{failover:?}");
    let (_, again) = handover(&client, &a.address, &conversation(8)).await;
    assert_eq!(
        again["status"], "already_handed_over",
        "dedup holds within the instance while Redis is down"
    );
    let (status, on_b) = handover(&client, &b.address, &conversation(9)).await;
    assert_eq!(
        (status, on_b["status"].as_str()),
        (200, Some("handed_over"))
    );

    for p in [&a, &b] {
        let plain = client
            .get(format!("{}/healthz", p.address))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status().as_u16(), 200);
        assert_eq!(plain.text().await.unwrap(), "ok");
        assert_eq!(
            health_detail(&client, &p.address).await,
            json!({"status": "ok", "handover_store": {"kind": "redis", "state": "down"}})
        );
        let metrics = metrics_text(&client, &p.address).await;
        assert!(
            metrics.contains("flexbridge_handover_store_up{kind=\"redis\"} 0"),
            "{metrics}"
        );
    }

    redis.restart().await;
    let started = Instant::now();
    for p in [&a, &b] {
        wait_for_store_state(&client, &p.address, "up", Duration::from_secs(5)).await;
    }
    eprintln!(
        "Redis restarted: both instances up again after {:?}",
        started.elapsed()
    );
    let (_, shared) = handover(&client, &b.address, &conversation(10)).await;
    let (_, seen) = handover(&client, &a.address, &conversation(10)).await;
    assert_eq!(shared["status"], "handed_over");
    assert_eq!(seen["status"], "already_handed_over", "{seen}");
    assert_eq!(seen["interaction_sid"], shared["interaction_sid"]);
    assert!(
        metrics_text(&client, &a.address)
            .await
            .contains("flexbridge_handover_store_up{kind=\"redis\"} 1")
    );

    assert!(a.is_running() && b.is_running(), "nothing crashed");
    for p in [a, b] {
        check_outage_logs(p);
    }
}

fn check_outage_logs(process: Process) {
    let logs = process.stop_and_read_logs();
    assert!(
        !logs.contains(REDIS_PASSWORD),
        "the password never reaches the logs"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    let warnings = logs
        .lines()
        .filter(|l| l.contains("handover store unreachable"))
        .count();
    assert_eq!(warnings, 1, "one warning per minute at most:\n{logs}");
    let connected: Vec<_> = log_events(&logs)
        .filter_map(|event| event["fields"]["message"].as_str().map(str::to_owned))
        .filter(|message| {
            message == "handover store connected" || message.starts_with("handover store reachable")
        })
        .collect();
    assert_eq!(
        connected,
        [
            "handover store connected",
            "handover store reachable again: handovers are shared across instances"
        ],
        "{logs}"
    );
    assert!(logs.contains("redis://:****@127.0.0.1:"), "{logs}");
}

/// check-config shows the store with its password masked, names a malformed
/// value without repeating it, and says the default is in-process.
#[test]
fn check_config_masks_the_store_password_and_refuses_malformed_urls() {
    let (code, out) = check_config(
        &[],
        &[(
            "HANDOVER_STORE",
            "rediss://default:upstash-secret-91@fly-flexbridge.upstash.io:6379",
        )],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("upstash-secret-91"), "{out}");
    assert!(
        out.contains(
            "HANDOVER_STORE                      rediss://default:****@fly-flexbridge.upstash.io:6379"
        ),
        "{out}"
    );

    let (code, out) = check_config(&[], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "HANDOVER_STORE                      (memory: in-process, dedup per instance)"
        ),
        "{out}"
    );

    let (code, out) = check_config(
        &[],
        &[(
            "HANDOVER_STORE",
            "https://user:typo-secret-3@cache.example.com",
        )],
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("typo-secret-3"), "{out}");
    assert!(
        out.contains(
            "HANDOVER_STORE                      INVALID: the scheme must be redis:// or rediss:// (TLS)"
        ),
        "{out}"
    );

    // `--connect` does not try to reach a store whose value is malformed.
    let (code, out) = check_config(
        &["--connect"],
        &[("HANDOVER_STORE", "https://cache.example.com")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "connections\n  HANDOVER_STORE                      not reached: the value is malformed\n"
        ),
        "{out}"
    );
}

/// `check-config --connect` has nothing to reach with the in-process store;
/// reaching everything does not excuse a malformed value elsewhere.
#[test]
fn check_config_connect_has_nothing_to_reach_in_process() {
    for (env, expected) in [(&[][..], 0), (&[("PORT", "eighty")][..], 1)] {
        let (code, out) = check_config(&["--connect"], env);
        assert_eq!(code, expected, "{out}");
        assert!(out.contains("in-process store: nothing to reach"), "{out}");
    }
}

/// `check-config --connect` PINGs the store: 0 when it answers, 1 with the
/// reason (and no password) when it does not.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn check_config_connect_reaches_the_store_and_fails_when_it_cannot() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let (code, out) = check_config(&["--connect"], &[("HANDOVER_STORE", &url)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("reachable: redis://:****@127.0.0.1:"), "{out}");
    assert!(!out.contains(REDIS_PASSWORD), "{out}");

    let wrong = format!("redis://:wrong-pass-77@127.0.0.1:{}", redis.port);
    let (code, out) = check_config(&["--connect"], &[("HANDOVER_STORE", &wrong)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("UNREACHABLE"), "{out}");
    assert!(!out.contains("wrong-pass-77"), "{out}");

    redis.kill();
    let (code, out) = check_config(&["--connect"], &[("HANDOVER_STORE", &url)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("UNREACHABLE"), "{out}");
    assert!(!out.contains(REDIS_PASSWORD), "{out}");
}

/// `rediss://` speaks TLS and checks the server's certificate: a
/// self-signed one is refused, with the reason, and the password stays hidden.
#[tokio::test]
#[ignore = "needs redis-server (and openssl for TLS): cargo test -- --ignored"]
async fn rediss_urls_speak_tls_and_refuse_an_untrusted_certificate() {
    let redis = RedisServer::start_tls().await;
    let url = format!("rediss://:{REDIS_PASSWORD}@localhost:{}", redis.port);

    let (code, out) = check_config(&["--connect"], &[("HANDOVER_STORE", &url)]);

    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("UNREACHABLE: rediss://:****@localhost:"),
        "{out}"
    );
    assert!(out.contains("certificate"), "{out}");
    assert!(!out.contains(REDIS_PASSWORD), "{out}");
}

/// Without `HANDOVER_STORE`, the detail shows the in-process store, always up,
/// and the plain answer is unchanged.
#[tokio::test]
async fn healthz_detail_shows_the_in_process_store_by_default() {
    let app = spawn_app(&[]).await;

    let detail = health_detail(&app.client, &app.address).await;
    let plain = app
        .client
        .get(app.url("/healthz?detail=no"))
        .send()
        .await
        .unwrap();

    assert_eq!(
        detail,
        json!({"status": "ok", "handover_store": {"kind": "memory", "state": "up"}})
    );
    assert_eq!(plain.text().await.unwrap(), "ok");
    assert!(
        metrics_text(&app.client, &app.address)
            .await
            .contains("flexbridge_handover_store_up{kind=\"memory\"} 1")
    );
}

/// Configured but unreachable from the start: flexbridge starts, hands over,
/// and answers `/healthz` with `200 ok`.
#[tokio::test]
async fn an_unreachable_store_at_start_up_does_not_stop_handovers() {
    let twilio = MockServer::start().await;
    mount_new_interactions(&twilio, Duration::ZERO).await;
    let closed = closed_port();
    let url = format!("redis://127.0.0.1:{closed}");
    let app = spawn_tools_app(&twilio, &[("HANDOVER_STORE", url.as_str())]).await;

    let (status, body) = app.hand_over(&conversation(11)).await;
    let (_, again) = app.hand_over(&conversation(11)).await;

    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("handed_over"))
    );
    assert_eq!(again["status"], "already_handed_over");
    assert_eq!(
        health_detail(&app.client, &app.address).await["handover_store"],
        json!({"kind": "redis", "state": "down"})
    );
    let plain = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(plain.text().await.unwrap(), "ok");
}
