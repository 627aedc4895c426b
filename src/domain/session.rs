//! The headers a Twilio AI Assistant sends with every tool request:
//! `X-Session-Id` (which conversation or call) and `X-Identity` (who).

use std::fmt;

use super::{CallSid, ConversationServiceSid, ConversationSid};

/// What an assistant session is attached to.
///
/// # Format
///
/// ```text
/// X-Session-Id = [ "webhook:" ] "conversations__" IS-sid "/" CH-sid
///              / "voice:" CA-sid [ "/" anything ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionId {
    /// A Conversations conversation (chat, SMS, WhatsApp, web).
    Conversation {
        /// The Conversations service.
        service: ConversationServiceSid,
        /// The conversation.
        conversation: ConversationSid,
    },
    /// A voice call.
    Voice {
        /// The call.
        call: CallSid,
    },
}

/// Why an `X-Session-Id` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "X-Session-Id must look like conversations__IS…/CH… (optionally prefixed with webhook:) or voice:CA…"
)]
pub struct SessionIdError;

impl SessionId {
    /// Parse an `X-Session-Id` header value.
    ///
    /// # Errors
    /// [`SessionIdError`] for any other shape or a malformed SID.
    pub fn parse(text: &str) -> Result<Self, SessionIdError> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("voice:") {
            let call = rest.split('/').next().unwrap_or_default();
            let call = CallSid::parse(call).map_err(|_| SessionIdError)?;
            return Ok(Self::Voice { call });
        }
        let rest = text.strip_prefix("webhook:").unwrap_or(text);
        let rest = rest.strip_prefix("conversations__").ok_or(SessionIdError)?;
        let (service, conversation) = rest.split_once('/').ok_or(SessionIdError)?;
        Ok(Self::Conversation {
            service: ConversationServiceSid::parse(service).map_err(|_| SessionIdError)?,
            conversation: ConversationSid::parse(conversation).map_err(|_| SessionIdError)?,
        })
    }
}

/// The session in its canonical form: `conversations__IS…/CH…` or `voice:CA…`.
impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conversation {
                service,
                conversation,
            } => write!(f, "conversations__{service}/{conversation}"),
            Self::Voice { call } => write!(f, "voice:{call}"),
        }
    }
}

/// Who the customer is, as the assistant knows them.
///
/// # Format
///
/// ```text
/// X-Identity = trait ":" value      ; phone:+1415…, whatsapp:+1…, email:a@b.c, user_id:FX…
/// ```
///
/// Split at the first `:` only, so values that contain `:` survive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    trait_name: String,
    value: String,
}

/// Why an `X-Identity` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "X-Identity must look like <trait>:<value>, e.g. phone:+14155550100 or whatsapp:+14155550100"
)]
pub struct IdentityError;

/// The Flex channel type of a conversation, from the customer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    /// `whatsapp:` identities.
    Whatsapp,
    /// Identities that are phone numbers (start with `+`).
    Sms,
    /// Flex webchat identities (start with `FX`).
    Web,
    /// Everything else.
    Chat,
}

impl ChannelType {
    /// The name the Interactions API expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Sms => "sms",
            Self::Web => "web",
            Self::Chat => "chat",
        }
    }
}

impl Identity {
    /// Parse an `X-Identity` header value.
    ///
    /// # Errors
    /// [`IdentityError`] without a `:` or with an empty trait or value.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let (trait_name, value) = text.split_once(':').ok_or(IdentityError)?;
        let (trait_name, value) = (trait_name.trim(), value.trim());
        if trait_name.is_empty() || value.is_empty() || value.chars().any(char::is_control) {
            return Err(IdentityError);
        }
        Ok(Self {
            trait_name: trait_name.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The channel type, as Twilio's published handover sample decides it.
    pub fn channel_type(&self) -> ChannelType {
        if self.trait_name.eq_ignore_ascii_case("whatsapp") {
            ChannelType::Whatsapp
        } else if self.value.starts_with('+') {
            ChannelType::Sms
        } else if self.value.starts_with("FX") {
            ChannelType::Web
        } else {
            ChannelType::Chat
        }
    }

    /// The customer's address for Flex: `whatsapp:+…` for WhatsApp, else the value.
    pub fn address(&self) -> String {
        match self.channel_type() {
            ChannelType::Whatsapp if !self.value.starts_with("whatsapp:") => {
                format!("whatsapp:{}", self.value)
            }
            _ => self.value.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IS: &str = "IS0123456789abcdef0123456789abcdef";
    const CH: &str = "CH0123456789abcdef0123456789abcdef";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_conversation_sessions_with_and_without_webhook_prefix() {
        for text in [
            format!("webhook:conversations__{IS}/{CH}"),
            format!("conversations__{IS}/{CH}"),
        ] {
            assert_eq!(
                SessionId::parse(&text).unwrap(),
                SessionId::Conversation {
                    service: ConversationServiceSid::parse(IS).unwrap(),
                    conversation: ConversationSid::parse(CH).unwrap(),
                },
                "{text}"
            );
        }
    }

    #[test]
    fn parses_voice_sessions_with_or_without_a_suffix() {
        for text in [
            format!("voice:{CA}"),
            format!("voice:{CA}/UT0123"),
            format!(" voice:{CA}\t"),
        ] {
            assert_eq!(
                SessionId::parse(&text).unwrap(),
                SessionId::Voice {
                    call: CallSid::parse(CA).unwrap()
                }
            );
        }
    }

    #[test]
    fn rejects_malformed_sessions() {
        for bad in [
            String::new(),
            format!("{IS}/{CH}"),
            format!("conversations__{IS}"),
            format!("conversations__{CH}/{IS}"),
            format!("conversations__{IS}/CH123"),
            "voice:".to_owned(),
            "voice:CA123".to_owned(),
            format!("sms:conversations__{IS}/{CH}"),
        ] {
            assert_eq!(SessionId::parse(&bad), Err(SessionIdError), "{bad:?}");
        }
    }

    #[test]
    fn identity_decides_the_channel_like_the_published_sample() {
        let cases = [
            (
                "whatsapp:+14155550100",
                ChannelType::Whatsapp,
                "whatsapp:+14155550100",
            ),
            (
                "whatsapp:whatsapp:+14155550100",
                ChannelType::Whatsapp,
                "whatsapp:+14155550100",
            ),
            ("phone:+14155550100", ChannelType::Sms, "+14155550100"),
            (
                " whatsapp : +14155550100 ",
                ChannelType::Whatsapp,
                "whatsapp:+14155550100",
            ),
            (
                "WhatsApp:+14155550100",
                ChannelType::Whatsapp,
                "whatsapp:+14155550100",
            ),
            ("user_id:FX0123", ChannelType::Web, "FX0123"),
            ("email:a@b.c", ChannelType::Chat, "a@b.c"),
            ("user_id:customer:42", ChannelType::Chat, "customer:42"),
        ];
        for (text, channel, address) in cases {
            let identity = Identity::parse(text).unwrap();
            assert_eq!(identity.channel_type(), channel, "{text}");
            assert_eq!(identity.address(), address, "{text}");
        }
    }

    #[test]
    fn rejects_identities_without_trait_or_value() {
        for bad in ["", "+14155550100", ":+1415", "phone:", "phone:\u{7}x"] {
            assert_eq!(Identity::parse(bad), Err(IdentityError), "{bad:?}");
        }
    }
}
