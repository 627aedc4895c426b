//! The `handoff` task attribute: one shape for every AI agent that hands a
//! customer to a person (`schemas/handoff.schema.json`), so one TaskRouter
//! workflow and one Flex view serve every vendor; and task attributes kept
//! within TaskRouter's size limit.

use serde_json::{Map, Value};

/// TaskRouter refuses task attributes over 16 KB
/// (<https://www.twilio.com/docs/taskrouter/limits>); flexbridge keeps them
/// below this many bytes of JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 16_000;

/// The reason a task gets when the AI agent's session failed with the
/// caller still on the line.
pub const SESSION_FAILED: &str = "ai_session_failed";

/// Which AI agent hands the customer over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// IBM watsonx Assistant (`/refer-handler`).
    Watsonx,
    /// A Twilio AI Assistant tool (`/tools/flex-handover`).
    AiAssistant,
    /// ASAPP GenerativeAgent (`/call-complete`).
    Asapp,
    /// PolyAI (`/polyai/call-complete`).
    PolyAi,
    /// An app on Twilio ConversationRelay (`/conversation-relay/complete`).
    ConversationRelay,
    /// Dialogflow CX through `<VirtualAgent>` (`/virtual-agent/complete`).
    DialogflowCx,
}

impl Vendor {
    /// The `vendor` value, also the `vendor` label of the handover metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watsonx => "watsonx",
            Self::AiAssistant => "ai_assistant",
            Self::Asapp => "asapp",
            Self::PolyAi => "polyai",
            Self::ConversationRelay => "conversation_relay",
            Self::DialogflowCx => "dialogflow_cx",
        }
    }
}

/// What an AI agent hands over with the customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    /// Who hands over.
    pub vendor: Vendor,
    /// Why, when the agent said so.
    pub reason: Option<String>,
    /// What happened so far, when the agent said so.
    pub summary: Option<String>,
    /// The vendor's own id of the session.
    pub session_id: Option<String>,
    /// The vendor's data, unchanged: an object, or text that is not one.
    pub context: Value,
}

impl Handoff {
    /// A handoff whose `reason` (else `reasonCode`) and `summary` are read
    /// from the context's string fields.
    pub fn new(vendor: Vendor, session_id: Option<String>, context: Value) -> Self {
        let (reason, summary) = reason_and_summary(&context);
        Self {
            vendor,
            reason,
            summary,
            session_id,
            context,
        }
    }

    /// The `reason` and `summary` the context's top level left out, read
    /// from its member `name` in the same way.
    #[must_use]
    pub fn or_nested(mut self, name: &str) -> Self {
        if let Some(nested) = self.context.get(name) {
            let (reason, summary) = reason_and_summary(nested);
            self.reason = self.reason.or(reason);
            self.summary = self.summary.or(summary);
        }
        self
    }

    /// The AI agent's session failed while the caller was still on the
    /// line: reason [`SESSION_FAILED`], the error as context.
    pub fn failed(vendor: Vendor, session_id: Option<String>, error: Value) -> Self {
        Self {
            vendor,
            reason: Some(SESSION_FAILED.to_owned()),
            summary: None,
            session_id,
            context: error,
        }
    }

    /// The task attributes: `attributes` (whose keys stay) with `handoff`
    /// added, within [`MAX_ATTRIBUTES_BYTES`]. When they do not fit, the
    /// handoff's context is cut first (its largest members, or its text's
    /// end), then its summary, reason and session id, then the largest other
    /// values but `call_sid`; `handoff.truncated` says so. A customer is
    /// never refused for the size of what an agent sent.
    pub fn into_attributes(self, mut attributes: Map<String, Value>) -> Value {
        let mut handoff = Map::new();
        handoff.insert("vendor".into(), self.vendor.as_str().into());
        for (name, value) in [
            ("reason", self.reason),
            ("summary", self.summary),
            ("session_id", self.session_id),
        ] {
            if let Some(value) = value {
                handoff.insert(name.into(), value.into());
            }
        }
        handoff.insert("context".into(), self.context);
        // `,"handoff":` joins the two, and a byte more keeps the task below the limit.
        let joined = size(&attributes) + size(&handoff) + 12;
        let mut excess = joined.saturating_sub(MAX_ATTRIBUTES_BYTES);
        if excess > 0 {
            excess += 17; // `,"truncated":true` marks the cut.
            for name in ["context", "summary", "reason", "session_id"] {
                if let Some(value) = handoff.get_mut(name) {
                    excess = cut(value, excess);
                }
            }
            cut_members(&mut attributes, excess, &["call_sid"]);
            handoff.insert("truncated".into(), true.into());
        }
        attributes.insert("handoff".into(), handoff.into());
        attributes.into()
    }
}

/// The string fields `reason` (else `reasonCode`) and `summary` of `value`.
fn reason_and_summary(value: &Value) -> (Option<String>, Option<String>) {
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    (
        text("reason").or_else(|| text("reasonCode")),
        text("summary"),
    )
}

/// What an agent sent as text (ConversationRelay's `HandoffData`, Dialogflow
/// CX's `VirtualAgentProviderData`): a JSON object when it is one, else the
/// text itself (JSON that is not an object, or no JSON at all). It never
/// stops a handoff.
pub fn agent_data(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => object,
        _ => Value::String(text.to_owned()),
    }
}

/// Bytes of `value` as JSON.
fn size<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// Make `value` at least `excess` bytes shorter as JSON if it can be; the
/// excess left. An object loses its largest members; text loses its end
/// (every byte of text is at least a byte of JSON); anything else is null.
fn cut(value: &mut Value, excess: usize) -> usize {
    let before = size(value);
    match &mut *value {
        Value::Object(members) => return cut_members(members, excess, &[]),
        Value::String(text) => {
            let mut keep = text.len().saturating_sub(excess);
            while !text.is_char_boundary(keep) {
                keep -= 1;
            }
            text.truncate(keep);
        }
        _ => *value = Value::Null,
    }
    excess.saturating_sub(before.saturating_sub(size(value)))
}

/// Remove members, largest first (never those in `keep`), until `excess`
/// bytes are saved or none is left; the excess left.
fn cut_members(members: &mut Map<String, Value>, mut excess: usize, keep: &[&str]) -> usize {
    let mut sizes: Vec<(String, usize)> = members
        .iter()
        .filter(|(name, _)| !keep.contains(&name.as_str()))
        // `"name":value,`
        .map(|(name, value)| (name.clone(), size(name) + size(value) + 2))
        .collect();
    sizes.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    for (name, bytes) in sizes {
        if excess == 0 {
            break;
        }
        members.remove(&name);
        excess = excess.saturating_sub(bytes);
    }
    excess
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn agent_data_is_an_object_or_the_text_as_sent() {
        assert_eq!(
            agent_data(r#"{"reason":"billing","n":1}"#),
            json!({"reason": "billing", "n": 1})
        );
        for text in ["[1,2]", "\"quoted\"", "42", "not json {", ""] {
            assert_eq!(agent_data(text), Value::String(text.to_owned()));
        }
    }

    #[test]
    fn reason_falls_back_to_reason_code_and_keys_already_set_stay() {
        let context = json!({"reasonCode": "billing", "summary": "wants a refund", "n": 1});
        let handoff = Handoff::new(
            Vendor::ConversationRelay,
            Some("VX1".into()),
            context.clone(),
        );
        let mut base = Map::new();
        base.insert("call_sid".into(), "CA1".into());
        assert_eq!(
            handoff.into_attributes(base),
            json!({"call_sid": "CA1", "handoff": {
                "vendor": "conversation_relay", "reason": "billing", "summary": "wants a refund",
                "session_id": "VX1", "context": context,
            }})
        );
    }

    #[test]
    fn nested_reason_and_summary_fill_only_what_the_top_level_left_out() {
        let nested = |context: Value| {
            let handoff = Handoff::new(Vendor::ConversationRelay, None, context.clone())
                .or_nested("attributes");
            assert_eq!(handoff.context, context, "the context stays as sent");
            (handoff.reason, handoff.summary)
        };
        let some = |text: &str| Some(text.to_owned());

        let inner = json!({"reasonCode": "inner-code", "summary": "inner summary"});
        assert_eq!(
            nested(json!({"attributes": inner})),
            (some("inner-code"), some("inner summary"))
        );
        assert_eq!(
            nested(json!({"reason": "top", "attributes": inner})),
            (some("top"), some("inner summary"))
        );
        assert_eq!(
            nested(json!({"summary": "top", "attributes": {"reason": "inner"}})),
            (some("inner"), some("top"))
        );
        for ignored in [json!("text"), json!([1]), json!({"reason": 7})] {
            assert_eq!(nested(json!({"attributes": ignored})), (None, None));
        }
        assert_eq!(nested(json!("not an object")), (None, None));
    }

    #[test]
    fn oversized_context_is_cut_largest_first_and_marked() {
        let transcript = "word ".repeat(12_000);
        let context = json!({"reason": "billing", "transcript": transcript, "tier": "gold"});
        let mut base = Map::new();
        base.insert("call_sid".into(), "CA1".into());
        let attributes =
            Handoff::new(Vendor::ConversationRelay, None, context).into_attributes(base);

        assert!(serde_json::to_vec(&attributes).unwrap().len() <= MAX_ATTRIBUTES_BYTES);
        assert_eq!(
            attributes["handoff"],
            json!({"vendor": "conversation_relay", "reason": "billing",
                   "context": {"reason": "billing", "tier": "gold"}, "truncated": true})
        );
    }

    /// Attributes are kept below 16,000 bytes: a task of 15,999 is left
    /// whole, and one of 16,000 is cut to 15,999, its `truncated` included.
    #[test]
    fn a_task_is_cut_from_exactly_sixteen_thousand_bytes() {
        let task = |padding: usize| {
            let mut base = Map::new();
            base.insert("call_sid".into(), "CA1".into());
            let context = Value::String("x".repeat(padding));
            Handoff::new(Vendor::ConversationRelay, None, context).into_attributes(base)
        };
        let size = |attributes: &Value| serde_json::to_vec(attributes).unwrap().len();
        let padding = 1_000 + 15_999 - size(&task(1_000));

        let kept = task(padding);
        assert_eq!(size(&kept), 15_999);
        assert_eq!(kept["handoff"].get("truncated"), None);
        let cut = task(padding + 1);
        assert_eq!(cut["handoff"]["truncated"], true);
        assert_eq!(size(&cut), 15_999);
    }

    /// An agent's variables become attributes, and when they are many and
    /// small, `call_sid` is the largest: it must still never be cut.
    #[test]
    fn many_small_attributes_are_cut_but_never_the_call_sid() {
        let call = "CA0123456789abcdef0123456789abcdef";
        let mut base = Map::new();
        base.insert("call_sid".into(), call.into());
        for i in 0..2_000 {
            base.insert(format!("v{i:04}"), "x".repeat(10).into());
        }
        let attributes = Handoff::new(Vendor::Asapp, None, json!({})).into_attributes(base);

        let size = serde_json::to_vec(&attributes).unwrap().len();
        assert!(size <= MAX_ATTRIBUTES_BYTES, "{size}");
        assert_eq!(attributes["call_sid"], call);
        assert_eq!(attributes["handoff"]["truncated"], true);
    }

    #[test]
    fn oversized_text_is_cut_at_a_character_boundary_and_everything_fits() {
        // 60 KB of text with escapes and multi-byte characters, a huge
        // summary, and a route's own key as big: all cut, call_sid kept.
        let text = "é\"<€>\n".repeat(8_000);
        let context = Value::String(text.clone());
        let handoff = Handoff {
            vendor: Vendor::DialogflowCx,
            reason: Some("r".repeat(20_000)),
            summary: Some(text),
            session_id: None,
            context,
        };
        let mut base = Map::new();
        base.insert("call_sid".into(), "CA1".into());
        base.insert("asapp".into(), json!({"big": "x".repeat(30_000)}));
        let attributes = handoff.into_attributes(base);

        let size = serde_json::to_vec(&attributes).unwrap().len();
        assert!(size <= MAX_ATTRIBUTES_BYTES, "{size}");
        assert_eq!(attributes["call_sid"], "CA1");
        assert_eq!(attributes["handoff"]["truncated"], true);
        assert!(attributes["handoff"]["context"].is_string());
    }

    #[test]
    fn text_is_cut_back_to_the_character_boundary_before_the_cut() {
        // 2 bytes to save from "aé€": the cut lands inside "€", so all of it goes.
        let mut text = json!("aé€");
        assert_eq!(cut(&mut text, 2), 0);
        assert_eq!(text, json!("aé"));
        // A cut inside "é" keeps "a" and saves 2 bytes, 1 more than asked.
        let mut text = json!("aé");
        assert_eq!(cut(&mut text, 1), 0);
        assert_eq!(text, json!("a"));
    }

    /// Dialogflow CX's handoff parameters may be a list or a number: too
    /// large, they are dropped whole.
    #[test]
    fn a_value_neither_object_nor_text_is_cut_to_null() {
        let mut list = Value::Array(vec![json!("transcript"); 100]);
        assert_eq!(cut(&mut list, 10), 0);
        assert_eq!(list, Value::Null);
        // `123456` is 6 bytes and `null` 4: 2 of the 10 are saved.
        let mut number = json!(123_456);
        assert_eq!(cut(&mut number, 10), 8);
        assert_eq!(number, Value::Null);
    }

    #[test]
    fn members_are_counted_with_their_name_quotes_colon_and_comma() {
        // `"a":"xxxx",` is 11 bytes and `"b":"yy",` 9.
        let members = json!({"a": "xxxx", "b": "yy"})
            .as_object()
            .cloned()
            .unwrap();

        let mut cut_once = members.clone();
        assert_eq!(cut_members(&mut cut_once, 11, &[]), 0);
        assert_eq!(Value::from(cut_once), json!({"b": "yy"}));

        let mut cut_all = members.clone();
        assert_eq!(cut_members(&mut cut_all, 25, &[]), 5);
        assert_eq!(Value::from(cut_all), json!({}));

        let mut kept = members;
        assert_eq!(cut_members(&mut kept, 11, &["a"]), 2);
        assert_eq!(Value::from(kept), json!({"a": "xxxx"}));
    }
}
