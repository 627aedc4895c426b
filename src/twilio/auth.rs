//! Who may call a Twilio-facing route: the request-signature policy, public
//! URL reconstruction behind proxies, and the tool key of `/tools/*`.

use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpMessage as _, HttpRequest, web};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tracing_actix_web::RootSpan;

use crate::config::Settings;
use crate::domain::PublicBaseUrl;
use crate::twilio::signature::{Algorithm, first_signer, first_signer_with_body};
use crate::twilio::{FormParams, SignatureKey};

/// The header Twilio signs requests with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The header of a request Twilio signed with a webhook SharedKey (a Webhook
/// Rule matched its URL): `key=<SharedKey id>,algorithm=<HMAC_SHA1|HMAC_SHA256>`.
/// A name, so looking it up parses nothing.
const SIGNATURE_SETTINGS: HeaderName =
    HeaderName::from_static("x-twilio-webhooks-signature-settings");

/// Why a request was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `X-Twilio-Signature` (and, on `/tools/*`, no tool key either).
    #[error("missing X-Twilio-Signature header")]
    MissingSignature,
    /// The signature does not match this request.
    #[error("invalid X-Twilio-Signature")]
    InvalidSignature,
    /// A tool key was presented and it is wrong.
    #[error("invalid tool key")]
    InvalidToolKey,
    /// Checks are on but no auth token is set: refuse everything.
    #[error("signature validation is not configured: set TWILIO_AUTH_TOKEN")]
    NotConfigured,
    /// The request is signed with a webhook SharedKey, whose secret is not set.
    #[error(
        "this request is signed with a webhook SharedKey (X-Twilio-Webhooks-Signature-Settings): \
         set TWILIO_WEBHOOK_SHARED_KEY_SECRET"
    )]
    SharedKeyNotConfigured,
}

impl AuthError {
    /// Stable code for logs, metrics and JSON errors.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::InvalidToolKey => "invalid_tool_key",
            Self::NotConfigured | Self::SharedKeyNotConfigured => "not_configured",
        }
    }
}

/// Which secret a valid signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    /// `TWILIO_AUTH_TOKEN`.
    Primary,
    /// `TWILIO_SECONDARY_AUTH_TOKEN`.
    Secondary,
    /// `TWILIO_WEBHOOK_SHARED_KEY_SECRET`.
    SharedKey,
    /// `TWILIO_SECONDARY_SHARED_KEY_SECRET`.
    SecondarySharedKey,
}

impl SignedWith {
    /// `primary`, `secondary`, `shared_key` or `secondary_shared_key`: the
    /// log field and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
            Self::SharedKey => "shared_key",
            Self::SecondarySharedKey => "secondary_shared_key",
        }
    }
}

/// Whether and how Twilio signatures are checked.
#[derive(Clone)]
pub enum SignaturePolicy {
    /// `TWILIO_VALIDATE_SIGNATURES=false` or `--dev`.
    Off,
    /// Checked. A request without a SharedKey settings header is checked
    /// against the auth tokens, one with the header against the SharedKey
    /// secrets; in order (two while one is rotated), and none set fails
    /// closed.
    Check {
        /// The auth tokens, for HMAC-SHA1.
        tokens: Vec<(SignedWith, SignatureKey)>,
        /// The SharedKey secrets, for HMAC-SHA1 and for HMAC-SHA256.
        shared_keys: [Vec<(SignedWith, SignatureKey)>; 2],
    },
}

/// What a route read from the request, for the signature to cover.
///
/// Whatever the variant, a URL carrying `bodySHA256` is checked in body mode
/// (URL signed alone, body hashed), exactly as Twilio's own middleware does.
#[derive(Debug, Clone, Copy)]
pub enum SignedBody<'a> {
    /// The route reads form parameters (POST) or none (GET): they are signed.
    Form {
        /// The decoded parameters, in order.
        params: &'a FormParams,
        /// The raw body, for `bodySHA256` URLs.
        raw: &'a [u8],
    },
    /// The route reads a raw body (JSON): only `bodySHA256` can cover it.
    Json(&'a [u8]),
}

/// Request authentication, built once from the settings.
#[derive(Clone)]
pub struct WebhookAuth {
    policy: SignaturePolicy,
    public_base_url: Option<PublicBaseUrl>,
    tool_key: Option<SecretString>,
}

impl WebhookAuth {
    /// The policy the settings ask for.
    pub fn from_settings(settings: &Settings) -> Self {
        let twilio = &settings.twilio;
        let keyed = |secrets: [(SignedWith, &Option<SecretString>); 2], algorithm| {
            secrets
                .into_iter()
                .filter_map(|(which, secret)| {
                    let secret = secret.as_ref()?.expose_secret();
                    Some((which, SignatureKey::with_algorithm(secret, algorithm)))
                })
                .collect::<Vec<_>>()
        };
        let tokens = keyed(
            [
                (SignedWith::Primary, &twilio.auth_token),
                (SignedWith::Secondary, &twilio.secondary_auth_token),
            ],
            Algorithm::HmacSha1,
        );
        let shared = [
            (SignedWith::SharedKey, &twilio.webhook_shared_key_secret),
            (
                SignedWith::SecondarySharedKey,
                &twilio.secondary_shared_key_secret,
            ),
        ];
        let shared_keys = [Algorithm::HmacSha1, Algorithm::HmacSha256].map(|a| keyed(shared, a));
        let policy = if twilio.validate_signatures {
            SignaturePolicy::Check {
                tokens,
                shared_keys,
            }
        } else {
            SignaturePolicy::Off
        };
        Self {
            policy,
            public_base_url: settings.public_base_url.clone(),
            tool_key: settings.tools.api_key.clone(),
        }
    }

    /// The policy registered with the app. Without one nothing can be
    /// checked, so the request is refused (fail closed).
    ///
    /// # Errors
    /// [`AuthError::NotConfigured`] when no policy is registered.
    pub fn registered(req: &HttpRequest) -> Result<&Self, AuthError> {
        req.app_data::<web::Data<Self>>()
            .map(|data| data.get_ref())
            .ok_or(AuthError::NotConfigured)
    }

    /// Check a Twilio webhook (voice routes).
    ///
    /// # Errors
    /// [`AuthError`] when the signature is missing or wrong, or checks are
    /// on without the secret the request needs.
    pub fn verify_twilio(&self, req: &HttpRequest, body: SignedBody<'_>) -> Result<(), AuthError> {
        self.check_twilio(req, body)
            .inspect_err(|e| crate::metrics::signature_rejection(e.code()))
    }

    /// Check the signature, and say (in the request's log line and the
    /// metrics) which secret it was made with.
    fn check_twilio(&self, req: &HttpRequest, body: SignedBody<'_>) -> Result<(), AuthError> {
        let SignaturePolicy::Check {
            tokens,
            shared_keys,
        } = &self.policy
        else {
            return Ok(());
        };
        // No secret at all: refused before anything else, signed or not.
        if tokens.is_empty() && shared_keys.iter().all(Vec::is_empty) {
            return Err(AuthError::NotConfigured);
        }
        let signature = req
            .headers()
            .get(SIGNATURE_HEADER)
            .ok_or(AuthError::MissingSignature)?
            .to_str()
            .map_err(|_| AuthError::InvalidSignature)?;
        let keys = signing_keys(req, tokens, shared_keys)?
            .iter()
            .map(|(which, key)| (*which, key));
        let url = public_url(req, self.public_base_url.as_ref());
        // Twilio signs JSON bodies through the URL's bodySHA256; the presence
        // of the parameter decides, as in Twilio's own middleware. A raw body
        // the signature does not cover could be swapped, so it is refused.
        let which = match body {
            SignedBody::Form { raw, .. } | SignedBody::Json(raw) if url.contains("bodySHA256") => {
                first_signer_with_body(keys, signature, &url, raw)
            }
            SignedBody::Form { params, .. } => first_signer(keys, signature, &url, params.iter()),
            // A JSON body without `bodySHA256` is covered only when empty.
            SignedBody::Json([]) => first_signer(keys, signature, &url, std::iter::empty()),
            SignedBody::Json(_) => None,
        }
        .ok_or(AuthError::InvalidSignature)?;
        crate::metrics::signature_accepted(which.as_str());
        if let Some(span) = req.extensions().get::<RootSpan>() {
            span.record("signed_with", which.as_str());
        }
        Ok(())
    }

    /// Check a `/tools/*` request: a valid `TOOL_API_KEY` (as
    /// `Authorization: Bearer`, `X-Api-Key` or a `key` query parameter) is
    /// accepted instead of a Twilio signature.
    ///
    /// With signature checks off, a configured tool key is still required
    /// (a user who set one meant it); without one the route is open.
    ///
    /// # Errors
    /// [`AuthError`] when neither a valid key nor a valid signature is presented.
    pub fn verify_tool(&self, req: &HttpRequest, body: SignedBody<'_>) -> Result<(), AuthError> {
        self.check_tool(req, body)
            .inspect_err(|e| crate::metrics::signature_rejection(e.code()))
    }

    fn check_tool(&self, req: &HttpRequest, body: SignedBody<'_>) -> Result<(), AuthError> {
        let presented = presented_tool_key(req);
        if let (Some(expected), Some(presented)) = (&self.tool_key, presented.as_deref()) {
            if bool::from(
                expected
                    .expose_secret()
                    .as_bytes()
                    .ct_eq(presented.as_bytes()),
            ) {
                return Ok(());
            }
            if req.headers().get(SIGNATURE_HEADER).is_none() {
                return Err(AuthError::InvalidToolKey);
            }
        }
        // With checks off a set tool key is the only way in; without one,
        // `check_twilio` lets every request through.
        if matches!(self.policy, SignaturePolicy::Off) && self.tool_key.is_some() {
            return Err(if presented.is_some() {
                AuthError::InvalidToolKey
            } else {
                AuthError::MissingSignature
            });
        }
        self.check_twilio(req, body)
    }
}

/// The keys that may have signed `req`, as twilio-node's middleware picks
/// them: the SharedKey secrets for the algorithm named when the request
/// carries a (non-empty) settings header, else the auth tokens.
///
/// # Errors
/// [`AuthError::SharedKeyNotConfigured`] or [`AuthError::NotConfigured`]
/// when the secret it needs is unset; [`AuthError::InvalidSignature`] for an
/// algorithm Twilio's library does not support, as it answers.
fn signing_keys<'k>(
    req: &HttpRequest,
    tokens: &'k [(SignedWith, SignatureKey)],
    shared_keys: &'k [Vec<(SignedWith, SignatureKey)>; 2],
) -> Result<&'k [(SignedWith, SignatureKey)], AuthError> {
    let settings = req
        .headers()
        .get(SIGNATURE_SETTINGS)
        .filter(|value| !value.is_empty());
    let Some(settings) = settings else {
        return if tokens.is_empty() {
            Err(AuthError::NotConfigured)
        } else {
            Ok(tokens)
        };
    };
    let [sha1, sha256] = shared_keys;
    if sha1.is_empty() {
        return Err(AuthError::SharedKeyNotConfigured);
    }
    let settings = settings.to_str().map_err(|_| AuthError::InvalidSignature)?;
    match Algorithm::from_settings(settings) {
        Ok(Algorithm::HmacSha1) => Ok(sha1),
        Ok(Algorithm::HmacSha256) => Ok(sha256),
        Err(unsupported) => {
            tracing::warn!("{unsupported}");
            Err(AuthError::InvalidSignature)
        }
    }
}

/// The tool key a request presents, if any.
fn presented_tool_key(req: &HttpRequest) -> Option<String> {
    let headers = req.headers();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let bearer = || {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim().to_owned())
    };
    let api_key = || {
        headers
            .get("X-Api-Key")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    let query = || {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.into_owned())
    };
    // In that order; an empty value is no key, so it cannot hide the next.
    let ways: [&dyn Fn() -> Option<String>; 3] = [&bearer, &api_key, &query];
    ways.iter()
        .filter_map(|way| way())
        .find(|key| !key.is_empty())
}

/// The URL Twilio requested: `PUBLIC_BASE_URL` when set, otherwise the
/// scheme and host a proxy reports (`Forwarded`, then `X-Forwarded-Proto` /
/// `X-Forwarded-Host`, then `Host`), plus the path and query exactly as received.
pub fn public_url(req: &HttpRequest, base: Option<&PublicBaseUrl>) -> String {
    let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match base {
        Some(base) => base.join(path_and_query),
        None => {
            let info = req.connection_info();
            format!("{}://{}{path_and_query}", info.scheme(), info.host())
        }
    }
}
