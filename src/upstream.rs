//! Outbound HTTP shared by every client (Twilio, Flex, vendors): one
//! connection pool per process, a 2 s connect timeout, one deadline for the
//! whole call including retries, and typed errors.
//!
//! Retries happen only where the request cannot have been applied: a
//! connection that was never established, and `429 Too Many Requests`
//! (after its `Retry-After`). At most two retries, never past the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::web::Bytes;
use reqwest::{RequestBuilder, StatusCode};
use tokio::sync::Semaphore;

/// Retries after the first attempt.
pub const MAX_RETRIES: u32 = 2;
/// How long to establish a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of an upstream body flexbridge reads.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Wait before retrying a refused connection (grows with each attempt).
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Wait after a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The process-wide outbound HTTP stack.
#[derive(Clone, Debug)]
pub struct Upstream {
    http: reqwest::Client,
    deadline: Duration,
    /// Caps requests in flight, and so open connections: a burst of
    /// handovers queues here (within the deadline) instead of opening a
    /// connection per request.
    in_flight: Arc<Semaphore>,
}

/// A complete upstream answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
    /// How many requests it took (1 + retries).
    pub attempts: u32,
}

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The deadline passed before a complete answer.
    #[error("{upstream} did not answer within {} ms", deadline.as_millis())]
    Timeout {
        /// Which upstream.
        upstream: &'static str,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// No connection could be made, or it broke before an answer.
    #[error("{upstream} could not be reached ({attempts} attempt(s))")]
    Unreachable {
        /// Which upstream.
        upstream: &'static str,
        /// Requests tried.
        attempts: u32,
        /// The transport error, without its URL.
        #[source]
        source: reqwest::Error,
    },
}

impl Upstream {
    /// Build the pooled client; at most `max_in_flight` requests at once.
    ///
    /// # Errors
    /// When the TLS stack cannot be initialised.
    pub fn new(deadline: Duration, max_in_flight: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(max_in_flight)
            .user_agent(concat!("flexbridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            deadline,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        })
    }

    /// The pooled client, to start requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send the request `build` makes (again for each retry) and read the
    /// whole answer, all within the deadline.
    ///
    /// # Errors
    /// [`UpstreamError`] on timeout or transport failure. An HTTP error
    /// status is an [`Answer`], for the caller to interpret.
    #[tracing::instrument(name = "upstream", skip_all, fields(upstream, status, attempts))]
    pub async fn send(
        &self,
        upstream: &'static str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, UpstreamError> {
        tracing::Span::current().record("upstream", upstream);
        let started = Instant::now();
        let deadline = started + self.deadline;
        let attempts = self.attempts(upstream, build, deadline);
        let result = tokio::time::timeout_at(deadline.into(), attempts)
            .await
            .unwrap_or(Err(UpstreamError::Timeout {
                upstream,
                deadline: self.deadline,
            }));
        let outcome = match &result {
            Ok(answer) => answer.status.as_str().to_owned(),
            Err(UpstreamError::Timeout { .. }) => "timeout".to_owned(),
            Err(UpstreamError::Unreachable { .. }) => "unreachable".to_owned(),
        };
        crate::metrics::upstream_call(upstream, &outcome, started.elapsed());
        result
    }

    /// Attempts until an answer, a failure that cannot be retried, or a
    /// wait that would not end before `deadline` (which [`Self::send`]
    /// enforces).
    async fn attempts(
        &self,
        upstream: &'static str,
        build: impl Fn() -> RequestBuilder,
        deadline: Instant,
    ) -> Result<Answer, UpstreamError> {
        // A comparison of durations: `now + wait` overflows an `Instant`
        // when an upstream asks for years.
        let fits = |wait: Duration| wait < deadline.saturating_duration_since(Instant::now());
        let mut attempts = 0;
        loop {
            attempts += 1;
            tracing::Span::current().record("attempts", attempts);
            let unreachable = |source: reqwest::Error| UpstreamError::Unreachable {
                upstream,
                attempts,
                source: source.without_url(),
            };
            let timeout = || UpstreamError::Timeout {
                upstream,
                deadline: self.deadline,
            };
            // The semaphore is never closed.
            let permit = self.in_flight.acquire().await.map_err(|_| timeout())?;
            let response = match build().send().await {
                Ok(response) => response,
                Err(e) if e.is_connect() && attempts <= MAX_RETRIES => {
                    let wait = CONNECT_BACKOFF * attempts;
                    if !fits(wait) {
                        return Err(unreachable(e));
                    }
                    drop(permit);
                    tracing::warn!(
                        upstream,
                        attempts,
                        "connection failed before sending; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(timeout()),
                Err(e) => return Err(unreachable(e)),
            };
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempts <= MAX_RETRIES {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|value| retry_after(value.to_str().ok()?, SystemTime::now()))
                    .unwrap_or(DEFAULT_RETRY_AFTER);
                if fits(wait) {
                    drop(permit);
                    tracing::warn!(
                        upstream,
                        attempts,
                        wait_ms = wait.as_millis() as u64,
                        "rate limited; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            tracing::Span::current().record("status", status.as_u16());
            let body = read_limited(response).await.map_err(|e| {
                if e.is_timeout() {
                    timeout()
                } else {
                    unreachable(e)
                }
            })?;
            return Ok(Answer {
                status,
                body,
                attempts,
            });
        }
    }
}

/// Read a body, keeping at most [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(Bytes::from(body))
}

/// A `Retry-After` value: whole seconds or an HTTP date, as the wait from
/// `now` (zero for a date already past); `None` for anything else. RFC
/// 9110's seconds are digits only, as urllib3 reads them.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits fail to parse only past `u64::MAX`: longer than any deadline.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    #[tokio::test]
    async fn answers_are_read_whole_up_to_one_mebibyte() {
        let server = MockServer::start().await;
        for (at, bytes) in [("/64k", 64 * 1024), ("/over", 1024 * 1024 + 4096)] {
            Mock::given(path(at))
                .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; bytes]))
                .mount(&server)
                .await;
        }
        let upstream = Upstream::new(Duration::from_secs(5), 4).unwrap();

        for (at, kept) in [("/64k", 64 * 1024), ("/over", 1024 * 1024)] {
            let url = format!("{}{at}", server.uri());
            let answer = upstream
                .send("test", || upstream.http().get(&url))
                .await
                .unwrap();
            assert_eq!(
                (answer.status, answer.body.len()),
                (StatusCode::OK, kept),
                "{at}"
            );
        }
    }

    /// `UPSTREAM_MAX_CONNECTIONS` holds: a server that keeps each request
    /// until a second one is open (or 200 ms pass) sees one at a time.
    #[tokio::test]
    async fn no_more_requests_are_open_at_once_than_allowed() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (counted, seen) = (open.clone(), most.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (open, most) = (counted.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = stream.read(&mut [0; 1024]).await;
                    most.fetch_max(open.fetch_add(1, SeqCst) + 1, SeqCst);
                    let until = Instant::now() + Duration::from_millis(200);
                    while open.load(SeqCst) < 2 && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    open.fetch_sub(1, SeqCst);
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = stream.write_all(answer).await;
                });
            }
        });
        let upstream = Upstream::new(Duration::from_secs(5), 1).unwrap();

        let sends = (0..3).map(|_| upstream.send("test", || upstream.http().get(&url)));
        for answer in futures_util::future::join_all(sends).await {
            assert_eq!(answer.unwrap().status, StatusCode::OK);
        }
        assert_eq!(most.load(SeqCst), 1);
    }

    #[test]
    fn retry_after_reads_whole_seconds_and_dates_and_nothing_else() {
        // 2015-10-21 07:28:00 UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let cases = [
            ("0", Some(Duration::ZERO)),
            (" 2 ", Some(Duration::from_secs(2))),
            ("18446744073709551615", Some(Duration::from_secs(u64::MAX))),
            ("99999999999999999999", Some(Duration::MAX)),
            ("1.5", None),
            ("1e20", None),
            ("+2", None),
            ("-1", None),
            ("inf", None),
            (
                "Wed, 21 Oct 2015 07:28:03 GMT",
                Some(Duration::from_secs(3)),
            ),
            // The obsolete forms RFC 9110 still asks recipients to accept.
            (
                "Wednesday, 21-Oct-15 07:28:05 GMT",
                Some(Duration::from_secs(5)),
            ),
            ("Wed Oct 21 07:28:07 2015", Some(Duration::from_secs(7))),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO)),
            ("Wed, 21 Oct 2015 07:28:00 CET", None),
            ("tomorrow", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(retry_after(value, now), expected, "{value:?}");
        }
    }
}
