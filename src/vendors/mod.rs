//! Typed clients for the AI-agent vendors flexbridge talks to (ASAPP
//! GenerativeAgent, PolyAI), on the shared outbound stack in
//! [`crate::upstream`], and the errors they share.
//!
//! Secrets (`asapp-api-secret`, `x-api-key`) live in `SecretString`s and
//! become header values marked sensitive only while a request is built; no
//! error or log line carries them.

pub mod asapp;
pub mod polyai;

use std::fmt;

use crate::upstream::UpstreamError;

/// A vendor flexbridge calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// ASAPP GenerativeAgent.
    Asapp,
    /// PolyAI.
    PolyAi,
}

impl Vendor {
    /// The upstream name its calls are logged and counted under.
    pub fn upstream(self) -> &'static str {
        match self {
            Self::Asapp => "asapp",
            Self::PolyAi => "polyai",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Asapp => "ASAPP",
            Self::PolyAi => "PolyAI",
        })
    }
}

/// Why a vendor call failed.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// A setting the call needs is unset.
    #[error("{variable} is not set")]
    NotConfigured {
        /// Whose setting.
        vendor: Vendor,
        /// The environment variable to set.
        variable: &'static str,
    },
    /// Transport failure or deadline.
    #[error("{}", describe_upstream(*vendor, source))]
    Upstream {
        /// Who failed.
        vendor: Vendor,
        /// What happened on the wire.
        source: UpstreamError,
    },
    /// The vendor answered with an error status.
    #[error("{vendor} answered {status}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// Who refused.
        vendor: Vendor,
        /// HTTP status.
        status: u16,
        /// The vendor's own error code and message, when its error document has them.
        detail: Option<String>,
    },
    /// A success status whose body is not what the API documents.
    #[error("{vendor} answered {status} with a body that is not the expected JSON")]
    Decode {
        /// Who answered.
        vendor: Vendor,
        /// HTTP status.
        status: u16,
    },
}

impl VendorError {
    /// Which vendor failed.
    pub fn vendor(&self) -> Vendor {
        match self {
            Self::NotConfigured { vendor, .. }
            | Self::Upstream { vendor, .. }
            | Self::Refused { vendor, .. }
            | Self::Decode { vendor, .. } => *vendor,
        }
    }

    /// Stable code: the JSON `error` field, `FlexbridgeError` for Studio and
    /// the metrics label.
    pub fn code(&self) -> &'static str {
        match (self.vendor(), self) {
            (Vendor::Asapp, Self::NotConfigured { .. }) => "asapp_not_configured",
            (Vendor::Asapp, Self::Upstream { source, .. }) if is_timeout(source) => "asapp_timeout",
            (Vendor::Asapp, Self::Upstream { .. }) => "asapp_unreachable",
            (Vendor::Asapp, Self::Refused { .. }) => "asapp_refused",
            (Vendor::Asapp, Self::Decode { .. }) => "asapp_bad_response",
            (Vendor::PolyAi, Self::NotConfigured { .. }) => "polyai_not_configured",
            (Vendor::PolyAi, Self::Upstream { source, .. }) if is_timeout(source) => {
                "polyai_timeout"
            }
            (Vendor::PolyAi, Self::Upstream { .. }) => "polyai_unreachable",
            (Vendor::PolyAi, Self::Refused { .. }) => "polyai_refused",
            (Vendor::PolyAi, Self::Decode { .. }) => "polyai_bad_response",
        }
    }

    /// Whether the deadline passed (504 rather than 502 on JSON routes).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Upstream { source, .. } if is_timeout(source))
    }
}

/// The transport failure in the vendor's own name ("ASAPP did not answer…").
fn describe_upstream(vendor: Vendor, error: &UpstreamError) -> String {
    match error {
        UpstreamError::Timeout { deadline, .. } => {
            format!("{vendor} did not answer within {} ms", deadline.as_millis())
        }
        UpstreamError::Unreachable { attempts, .. } => {
            format!("{vendor} could not be reached ({attempts} attempt(s))")
        }
    }
}

fn is_timeout(error: &UpstreamError) -> bool {
    matches!(error, UpstreamError::Timeout { .. })
}

/// At most this many characters of a vendor's error message are kept: enough
/// to diagnose, too few to flood a log or a Studio variable.
const MAX_DETAIL_CHARS: usize = 200;

/// A vendor's error text, shortened to [`MAX_DETAIL_CHARS`].
fn shorten(text: &str) -> String {
    text.chars().take(MAX_DETAIL_CHARS).collect()
}
