//! `HANDOVER_STORE`: where handovers are remembered, and the Redis URL that
//! names a shared store, kept secret because it usually carries a password.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// Why `HANDOVER_STORE` is not acceptable. No variant ever carries the
/// value itself: it may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreUrlError {
    /// Neither `memory` nor a URL.
    #[error("expected memory, or a redis:// or rediss:// (TLS) URL")]
    NotAUrl,
    /// A URL of another scheme.
    #[error("the scheme must be redis:// or rediss:// (TLS)")]
    Scheme,
    /// No host, or a wildcard address no client can connect to.
    #[error("the URL needs the host of the Redis server")]
    Host,
    /// A path other than a database number.
    #[error("the path must be a database number such as /0, or nothing")]
    Database,
    /// A fragment (`#insecure` would turn certificate checks off).
    #[error("must not contain a #fragment (certificate checks cannot be turned off)")]
    Fragment,
    /// Something the Redis client itself refuses (e.g. `?protocol=`).
    #[error("the Redis client does not accept this URL (check ?protocol= and percent-encoding)")]
    Rejected,
}

/// Where handovers are remembered (`HANDOVER_STORE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HandoverStoreSetting {
    /// In this process only (the default): dedup holds per instance.
    #[default]
    Memory,
    /// A Redis server shared by every instance.
    Redis(RedisUrl),
}

impl HandoverStoreSetting {
    /// Parse `memory` or a `redis://` / `rediss://` URL.
    ///
    /// # Errors
    /// [`StoreUrlError`] saying what is wrong, never repeating the value.
    pub fn parse(text: &str) -> Result<Self, StoreUrlError> {
        if text.eq_ignore_ascii_case("memory") {
            Ok(Self::Memory)
        } else {
            RedisUrl::parse(text).map(Self::Redis)
        }
    }
}

/// A Redis URL: `redis://[user:password@]host[:port][/db]`, or `rediss://`
/// for TLS. [`fmt::Display`] and [`fmt::Debug`] show it with the password
/// masked; only [`RedisUrl::expose`] gives the real one, to the client.
#[derive(Clone)]
pub struct RedisUrl {
    url: SecretString,
    masked: String,
    /// The password as written and percent-decoded, to scrub from error texts.
    secrets: Vec<SecretString>,
}

impl RedisUrl {
    /// Parse and check a Redis URL without connecting.
    ///
    /// # Errors
    /// [`StoreUrlError`] saying what is wrong, never repeating the value.
    pub fn parse(text: &str) -> Result<Self, StoreUrlError> {
        let url = Url::parse(text).map_err(|_| StoreUrlError::NotAUrl)?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(StoreUrlError::Scheme);
        }
        match url.host_str() {
            None | Some("" | "0.0.0.0" | "[::]") => return Err(StoreUrlError::Host),
            Some(_) => {}
        }
        let db = url.path().trim_start_matches('/');
        if !(db.is_empty() || (db.len() <= 5 && db.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(StoreUrlError::Database);
        }
        if url.fragment().is_some() {
            return Err(StoreUrlError::Fragment);
        }
        redis::Client::open(text).map_err(|_| StoreUrlError::Rejected)?;

        let mut secrets = Vec::new();
        let mut masked = url.clone();
        if let Some(password) = url.password() {
            secrets.push(SecretString::from(password));
            if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
                secrets.push(SecretString::from(decoded.into_owned()));
            }
            let _ = masked.set_password(Some("****"));
        } else if !url.username().is_empty() {
            // A lone user name is how some providers pass a token.
            secrets.push(SecretString::from(url.username()));
            let _ = masked.set_username("****");
        }
        Ok(Self {
            url: SecretString::from(text),
            masked: masked.to_string(),
            secrets,
        })
    }

    /// The URL with its password, for the Redis client only.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The URL with its password replaced by `****`.
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// `text` with every secret of this URL replaced by `****`, for error
    /// messages that may quote what the client was given.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.expose(), &self.masked);
        for secret in &self.secrets {
            let secret = secret.expose_secret();
            if !secret.is_empty() {
                text = text.replace(secret, "****");
            }
        }
        text
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for RedisUrl {}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl").field(&self.masked).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(text: &str) -> RedisUrl {
        match HandoverStoreSetting::parse(text) {
            Ok(HandoverStoreSetting::Redis(url)) => url,
            other => panic!("{text} should be a Redis URL: {other:?}"),
        }
    }

    #[test]
    fn memory_is_accepted_in_any_case() {
        assert_eq!(
            HandoverStoreSetting::parse("memory"),
            Ok(HandoverStoreSetting::Memory)
        );
        assert_eq!(
            HandoverStoreSetting::parse("MEMORY"),
            Ok(HandoverStoreSetting::Memory)
        );
    }

    #[test]
    fn the_password_is_masked_everywhere_but_expose() {
        let url = redis("rediss://default:p%40ss-w0rd@fly-flexbridge.upstash.io:6379");

        assert_eq!(
            url.masked(),
            "rediss://default:****@fly-flexbridge.upstash.io:6379"
        );
        assert_eq!(url.to_string(), url.masked());
        assert_eq!(format!("{url:?}"), format!("RedisUrl({:?})", url.masked()));
        assert!(!format!("{:?}", HandoverStoreSetting::Redis(url.clone())).contains("w0rd"));
        assert_eq!(
            url.expose(),
            "rediss://default:p%40ss-w0rd@fly-flexbridge.upstash.io:6379"
        );
    }

    #[test]
    fn urls_are_equal_only_with_the_same_password() {
        let url = "redis://:a@cache.internal:6379";
        assert_eq!(redis(url), redis(url));
        assert_ne!(redis(url), redis("redis://:b@cache.internal:6379"));
    }

    #[test]
    fn scrub_removes_the_password_as_written_and_decoded() {
        let url = redis("redis://:p%40ss-w0rd@10.0.0.1:6380/2");

        assert_eq!(url.masked(), "redis://:****@10.0.0.1:6380/2");
        assert_eq!(
            url.scrub("auth failed for p@ss-w0rd and p%40ss-w0rd"),
            "auth failed for **** and ****"
        );
    }

    #[test]
    fn a_lone_user_name_is_treated_as_a_secret() {
        let url = redis("redis://token-123@cache.internal");
        assert_eq!(url.masked(), "redis://****@cache.internal");
        assert!(!url.to_string().contains("token-123"));
    }

    #[test]
    fn urls_without_credentials_are_shown_as_they_are() {
        let url = redis("redis://127.0.0.1:6379");
        assert_eq!(url.masked(), "redis://127.0.0.1:6379");
        let url = redis("redis://[::1]:6379/0");
        assert_eq!(url.masked(), "redis://[::1]:6379/0");
        // Five digits at most: a longer database number is a typo.
        let url = redis("redis://cache.internal:6379/99999");
        assert_eq!(url.masked(), "redis://cache.internal:6379/99999");
    }

    #[test]
    fn malformed_values_are_refused_without_repeating_them() {
        let cases = [
            ("not a url", StoreUrlError::NotAUrl),
            ("localhost:6379", StoreUrlError::Scheme),
            (
                "https://user:secret-1@cache.example.com",
                StoreUrlError::Scheme,
            ),
            ("redis://:secret-2@0.0.0.0:6379", StoreUrlError::Host),
            (
                "redis://:secret-3@cache.example.com/db1",
                StoreUrlError::Database,
            ),
            (
                "redis://:secret-6@cache.example.com/100000",
                StoreUrlError::Database,
            ),
            (
                "rediss://:secret-4@cache.example.com#insecure",
                StoreUrlError::Fragment,
            ),
            (
                "redis://:secret-5@cache.example.com?protocol=resp9",
                StoreUrlError::Rejected,
            ),
            // A password that is not UTF-8 once decoded.
            (
                "redis://:secret-7%FF@cache.example.com",
                StoreUrlError::Rejected,
            ),
        ];
        for (text, expected) in cases {
            let error = HandoverStoreSetting::parse(text).expect_err(text);
            assert_eq!(error, expected, "{text}");
            assert!(!error.to_string().contains("secret"), "{text}: {error}");
        }
    }
}
