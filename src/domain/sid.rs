//! Twilio resource identifiers (SIDs), one type per resource kind.
//!
//! # Format
//!
//! `PREFIX HEX{32}`: a two-letter upper-case prefix naming the resource kind
//! (`CA` call, `WW` TaskRouter workflow, …) followed by 32 hexadecimal digits.

use std::fmt;
use std::marker::PhantomData;

/// What kind of resource a [`Sid`] names: its prefix and a human name for errors.
pub trait SidKind {
    /// The two-letter prefix, e.g. `"CA"`.
    const PREFIX: &'static str;
    /// What the SID identifies, for error messages ("call", "workflow").
    const WHAT: &'static str;
}

/// A validated Twilio SID of kind `K`; holding one proves the text is well formed.
#[derive(Clone, PartialEq, Eq)]
pub struct Sid<K> {
    value: String,
    kind: PhantomData<K>,
}

/// Why a text is not a SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a Twilio {what} SID (expected {prefix} followed by 32 hex digits)")]
pub struct SidError {
    value: String,
    what: &'static str,
    prefix: &'static str,
}

impl<K: SidKind> Sid<K> {
    /// Parse `text` as a SID of kind `K`.
    ///
    /// # Errors
    /// When the prefix differs or the rest is not exactly 32 hex digits.
    pub fn parse(text: &str) -> Result<Self, SidError> {
        let valid = text.len() == 34
            && text.starts_with(K::PREFIX)
            && text[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if valid {
            Ok(Self {
                value: text.to_owned(),
                kind: PhantomData,
            })
        } else {
            // Cut what we echo back so a pasted secret or a huge value never
            // ends up whole in an error message.
            let shown: String = text.chars().take(40).collect();
            Err(SidError {
                value: shown,
                what: K::WHAT,
                prefix: K::PREFIX,
            })
        }
    }
}

impl<K> AsRef<str> for Sid<K> {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl<K> fmt::Display for Sid<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K> fmt::Debug for Sid<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

macro_rules! sid_kinds {
    ($($(#[$doc:meta])* $kind:ident, $alias:ident, $prefix:literal, $what:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $kind {}
        impl SidKind for $kind {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;
        }
        $(#[$doc])*
        pub type $alias = Sid<$kind>;
    )*};
}

sid_kinds! {
    /// An account (`AC…`).
    AccountKind, AccountSid, "AC", "account";
    /// An API key (`SK…`).
    ApiKeyKind, ApiKeySid, "SK", "API key";
    /// A voice call (`CA…`).
    CallKind, CallSid, "CA", "call";
    /// A TaskRouter workspace (`WS…`).
    WorkspaceKind, WorkspaceSid, "WS", "workspace";
    /// A TaskRouter workflow (`WW…`).
    WorkflowKind, WorkflowSid, "WW", "workflow";
    /// A Conversations service (`IS…`).
    ConversationServiceKind, ConversationServiceSid, "IS", "conversation service";
    /// A conversation (`CH…`).
    ConversationKind, ConversationSid, "CH", "conversation";
    /// A Studio flow (`FW…`).
    FlowKind, FlowSid, "FW", "Studio flow";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prefix_and_32_hex_digits() {
        let sid = CallSid::parse("CA0123456789abcdef0123456789ABCDEF").unwrap();
        assert_eq!(sid.as_ref(), "CA0123456789abcdef0123456789ABCDEF");
    }

    #[test]
    fn rejects_wrong_prefix_length_and_digits() {
        for bad in [
            "",
            "CA",
            "WW0123456789abcdef0123456789abcdef",
            "ca0123456789abcdef0123456789abcdef",
            "CA0123456789abcdef0123456789abcde",
            "CA0123456789abcdef0123456789abcdef0",
            "CA0123456789abcdef0123456789abcdeg",
            "CA0123456789abcdef0123456789abcdé",
        ] {
            assert!(CallSid::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn error_names_the_kind_and_expected_shape() {
        let err = WorkflowSid::parse("WS123").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"WS123\" is not a Twilio workflow SID (expected WW followed by 32 hex digits)"
        );
    }

    /// A pasted secret or a huge value is echoed cut to its first 40
    /// characters, which is enough to recognise a mistyped SID.
    #[test]
    fn error_echoes_at_most_forty_characters() {
        let long = format!("WW{}", "é".repeat(48));
        let err = WorkflowSid::parse(&long).unwrap_err();
        let shown = format!("WW{}", "é".repeat(38));
        assert!(
            err.to_string().starts_with(&format!("{shown:?} is not")),
            "{err}"
        );
    }
}
