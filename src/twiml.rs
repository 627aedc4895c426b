//! TwiML documents, written through quick-xml so that every attribute and
//! text is escaped by construction.
//!
//! Only the verbs flexbridge answers with exist here; each is a typed value,
//! so a route cannot put a noun where Twilio does not accept it.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};

use crate::domain::WorkflowSid;

/// The content type of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// A `<Response>` for a voice call: verbs run in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoiceResponse {
    verbs: Vec<Verb>,
}

/// One TwiML verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `<Dial answerOnBridge referUrl><Sip>uri</Sip></Dial>`.
    DialSip {
        /// Keep the caller hearing ringing until the far end answers.
        answer_on_bridge: bool,
        /// Where Twilio sends a SIP REFER from the dialled party.
        refer_url: String,
        /// The SIP URI to dial.
        sip_uri: String,
    },
    /// `<Redirect method="POST">url</Redirect>`.
    Redirect {
        /// Absolute or relative URL Twilio requests next.
        url: String,
    },
    /// `<Enqueue workflowSid><Task>json</Task></Enqueue>`: hand the call to TaskRouter (Flex).
    Enqueue {
        /// The TaskRouter workflow that routes the task.
        workflow_sid: WorkflowSid,
        /// Task attributes as a JSON object text.
        task_attributes: String,
    },
    /// `<Say>text</Say>`.
    Say {
        /// What the caller hears.
        text: String,
    },
    /// `<Hangup/>`.
    Hangup,
    /// `<Connect action><Noun …><Parameter name value/>…</Noun></Connect>`:
    /// the call goes to an AI agent until the agent hands it back.
    Connect {
        /// Where Twilio asks for the next TwiML when the agent's session
        /// ends; without it the call goes on to the next verb.
        action: Option<String>,
        /// What the call connects to.
        noun: Noun,
        /// Custom parameters the agent receives when its session starts.
        parameters: Vec<Parameter>,
    },
    /// `<Connect connectorId action/>`: hand the call to a vendor's connector.
    ConnectConnector {
        /// The connector's identifier.
        connector_id: String,
        /// Where Twilio asks for the next TwiML when the connector hands the call back.
        action: String,
    },
}

/// What `<Connect>` connects a call to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noun {
    /// `<Stream url>`: a bidirectional media stream (ASAPP GenerativeAgent).
    Stream {
        /// The `wss://` URL of the stream.
        url: String,
    },
    /// `<ConversationRelay url welcomeGreeting language
    /// conversationConfiguration>`: an LLM agent's WebSocket app, Twilio
    /// doing speech to text and back.
    ConversationRelay {
        /// The `wss://` URL of the app.
        url: String,
        /// What the caller hears first, if anything.
        welcome_greeting: Option<String>,
        /// The session's language, if not Twilio's default.
        language: Option<String>,
        /// The Conversation Orchestrator configuration that records the
        /// session, if any.
        conversation_configuration: Option<String>,
    },
    /// `<VirtualAgent connectorName>`: a Dialogflow CX agent.
    VirtualAgent {
        /// The one-click integration's name.
        connector_name: String,
    },
}

/// One `<Parameter name value/>` of a `<Connect>` noun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The parameter's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl Parameter {
    /// A parameter named `name` with `value`.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }
}

impl VoiceResponse {
    /// An empty response.
    pub fn new() -> Self {
        Self::default()
    }

    /// `<Enqueue workflowSid><Task>{attributes}</Task></Enqueue>`: the call
    /// goes to a Flex agent, routed by the workflow on these task attributes.
    pub fn enqueue(workflow: &WorkflowSid, attributes: &serde_json::Value) -> Self {
        Self::new().verb(Verb::Enqueue {
            workflow_sid: workflow.clone(),
            task_attributes: attributes.to_string(),
        })
    }

    /// Append a verb.
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verbs.push(verb);
        self
    }

    /// Append every verb of `next`, in order.
    #[must_use]
    pub fn then(mut self, next: VoiceResponse) -> Self {
        self.verbs.extend(next.verbs);
        self
    }

    /// The verbs, in order.
    pub fn verbs(&self) -> &[Verb] {
        &self.verbs
    }

    /// The XML document, declaration included.
    pub fn render(&self) -> String {
        // Only text is ever written, so the bytes are UTF-8.
        String::from_utf8(self.render_bytes()).unwrap_or_else(|_| MINIMAL_RESPONSE.to_owned())
    }

    /// The XML document as bytes, ready to be a response body.
    pub fn render_bytes(&self) -> Vec<u8> {
        // Most answers are a few hundred bytes: one allocation, no growing.
        let mut writer = Writer::new(Vec::with_capacity(1024));
        // Writing into a Vec cannot fail; if it ever did, a minimal valid
        // document keeps the call alive rather than sending broken XML.
        match self.write(&mut writer) {
            Ok(()) => writer.into_inner(),
            Err(_) => MINIMAL_RESPONSE.as_bytes().to_vec(),
        }
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("Response")
            .write_inner_content(|w| self.verbs.iter().try_for_each(|verb| write_verb(w, verb)))?;
        Ok(())
    }
}

/// The smallest valid answer: Twilio ends the call politely.
const MINIMAL_RESPONSE: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>";

/// A start tag with its attributes (values escaped by quick-xml).
fn tag<'a>(name: &'a str, attributes: &[(&str, &str)]) -> BytesStart<'a> {
    BytesStart::new(name).with_attributes(attributes.iter().copied())
}

/// `<tag>text</tag>`, the text escaped by quick-xml.
fn text_element(w: &mut Writer<Vec<u8>>, tag: BytesStart<'_>, text: &str) -> std::io::Result<()> {
    w.write_event(Event::Start(tag.borrow()))?;
    w.write_event(Event::Text(BytesText::new(&xml_safe(text))))?;
    w.write_event(Event::End(tag.to_end()))
}

/// `<tag>`, what `inner` writes, `</tag>`.
fn element(
    w: &mut Writer<Vec<u8>>,
    tag: BytesStart<'_>,
    inner: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    w.write_event(Event::Start(tag.borrow()))?;
    inner(w)?;
    w.write_event(Event::End(tag.to_end()))
}

fn write_verb(w: &mut Writer<Vec<u8>>, verb: &Verb) -> std::io::Result<()> {
    match verb {
        Verb::DialSip {
            answer_on_bridge,
            refer_url,
            sip_uri,
        } => {
            let answer_on_bridge = if *answer_on_bridge { "true" } else { "false" };
            let refer_url = xml_safe(refer_url);
            let dial = tag(
                "Dial",
                &[
                    ("answerOnBridge", answer_on_bridge),
                    ("referUrl", &refer_url),
                ],
            );
            element(w, dial, |w| text_element(w, tag("Sip", &[]), sip_uri))
        }
        Verb::Redirect { url } => text_element(w, tag("Redirect", &[("method", "POST")]), url),
        Verb::Enqueue {
            workflow_sid,
            task_attributes,
        } => {
            let enqueue = tag("Enqueue", &[("workflowSid", workflow_sid.as_ref())]);
            element(w, enqueue, |w| {
                text_element(w, tag("Task", &[]), task_attributes)
            })
        }
        Verb::Say { text } => text_element(w, tag("Say", &[]), text),
        Verb::Hangup => w.write_event(Event::Empty(tag("Hangup", &[]))),
        Verb::Connect {
            action,
            noun,
            parameters,
        } => {
            let action = action.as_deref().map(xml_safe);
            let connect = match &action {
                Some(action) => tag("Connect", &[("action", action)]),
                None => tag("Connect", &[]),
            };
            let noun = match noun {
                Noun::Stream { url } => tag("Stream", &[("url", &xml_safe(url))]),
                Noun::ConversationRelay {
                    url,
                    welcome_greeting,
                    language,
                    conversation_configuration,
                } => {
                    let mut relay = tag("ConversationRelay", &[("url", &xml_safe(url))]);
                    for (name, value) in [
                        ("welcomeGreeting", welcome_greeting),
                        ("language", language),
                        ("conversationConfiguration", conversation_configuration),
                    ] {
                        if let Some(value) = value {
                            relay.push_attribute((name, &*xml_safe(value)));
                        }
                    }
                    relay
                }
                Noun::VirtualAgent { connector_name } => tag(
                    "VirtualAgent",
                    &[("connectorName", &xml_safe(connector_name))],
                ),
            };
            element(w, connect, |w| {
                if parameters.is_empty() {
                    return w.write_event(Event::Empty(noun));
                }
                element(w, noun, |w| {
                    parameters.iter().try_for_each(|p| {
                        let (name, value) = (xml_safe(&p.name), xml_safe(&p.value));
                        let parameter = tag("Parameter", &[("name", &name), ("value", &value)]);
                        w.write_event(Event::Empty(parameter))
                    })
                })
            })
        }
        Verb::ConnectConnector {
            connector_id,
            action,
        } => {
            let (connector_id, action) = (xml_safe(connector_id), xml_safe(action));
            let connect = tag(
                "Connect",
                &[("connectorId", &connector_id), ("action", &action)],
            );
            w.write_event(Event::Empty(connect))
        }
    }
}

/// Replace characters XML 1.0 forbids even when escaped (most C0 controls,
/// U+FFFE, U+FFFF) with U+FFFD, so no input can make a document ill-formed.
pub fn xml_safe(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }
    // Every forbidden character has a byte below 0x20 or starts with 0xEF
    // (U+F000 to U+FFFF) in UTF-8: most text is cleared without decoding.
    let plain = text.bytes().all(|b| b >= 0x20 && b != 0xEF);
    if plain || text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.chars()
                .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dial_with_declaration_and_escaped_values() {
        let twiml = VoiceResponse::new()
            .verb(Verb::DialSip {
                answer_on_bridge: true,
                refer_url: "https://a.b/refer-handler?x=1&y=\"2\"".into(),
                sip_uri: "sip:+1800@host;secure=true".into(),
            })
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial answerOnBridge=\"true\" \
             referUrl=\"https://a.b/refer-handler?x=1&amp;y=&quot;2&quot;\"><Sip>sip:+1800@host;secure=true</Sip>\
             </Dial></Response>"
        );
    }

    #[test]
    fn escapes_text_and_replaces_characters_xml_cannot_carry() {
        let twiml = VoiceResponse::new()
            .verb(Verb::Say {
                text: "a<b&c>\"d'\u{1}\u{FFFF}".into(),
            })
            .verb(Verb::Hangup)
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>a&lt;b&amp;c&gt;&quot;d&apos;\u{FFFD}\u{FFFD}</Say>\
             <Hangup/></Response>"
        );
    }

    #[test]
    fn renders_redirect_and_enqueue() {
        let workflow = WorkflowSid::parse("WW0123456789abcdef0123456789abcdef").unwrap();
        let twiml = VoiceResponse::new()
            .verb(Verb::Redirect {
                url: "https://s/x?a=1&b=2".into(),
            })
            .verb(Verb::Enqueue {
                workflow_sid: workflow,
                task_attributes: r#"{"k":"<v>"}"#.into(),
            })
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Redirect method=\"POST\">https://s/x?a=1&amp;b=2</Redirect>\
             <Enqueue workflowSid=\"WW0123456789abcdef0123456789abcdef\"><Task>{&quot;k&quot;:&quot;&lt;v&gt;&quot;}</Task>\
             </Enqueue></Response>"
        );
    }

    proptest::proptest! {
        /// Exactly the characters XML 1.0 forbids are replaced.
        #[test]
        fn xml_safe_replaces_exactly_the_forbidden_characters(
            text in "[a\t\n\r\u{0}-\u{1f}\u{7f}\u{e9}\u{d7ff}\u{e000}\u{f000}\u{fffd}-\u{ffff}\u{10000}]{0,12}",
        ) {
            let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
            let expected: String = text.chars().map(|c| if allowed(c) { c } else { '\u{FFFD}' }).collect();
            let safe = xml_safe(&text);
            proptest::prop_assert_eq!(matches!(safe, Cow::Borrowed(_)), expected == text);
            proptest::prop_assert_eq!(safe.as_ref(), expected.as_str());
        }
    }

    #[test]
    fn render_bytes_is_render_and_long_escaped_values_stay_whole() {
        let long = "&<>\"'".repeat(200);
        let response = VoiceResponse::new()
            .verb(Verb::Say { text: long.clone() })
            .verb(Verb::DialSip {
                answer_on_bridge: false,
                refer_url: long.clone(),
                sip_uri: "sip:x@\u{F000}\u{FFFE}".into(),
            })
            .verb(Verb::ConnectConnector {
                connector_id: long,
                action: String::new(),
            });
        let rendered = response.render();
        assert_eq!(response.render_bytes(), rendered.as_bytes());
        assert!(rendered.contains("<Sip>sip:x@\u{F000}\u{FFFD}</Sip>"));
        assert!(
            rendered
                .contains("<Dial answerOnBridge=\"false\" referUrl=\"&amp;&lt;&gt;&quot;&apos;")
        );
        assert!(rendered.ends_with("action=\"\"/></Response>"));
    }

    fn parameter(name: &str, value: &str) -> Parameter {
        Parameter::new(name, value)
    }

    #[test]
    fn renders_connect_stream_with_action_and_escaped_parameters() {
        let twiml = VoiceResponse::new()
            .verb(Verb::Connect {
                action: Some("/call-complete?callSid=CA1&x=\"y\"".into()),
                noun: Noun::Stream {
                    url: "wss://media.example.com/s?a=1&b=<2>".into(),
                },
                parameters: vec![
                    parameter("asapp_callTransferId", "CA1"),
                    parameter("input_note", "a<b&c>\"d'\t\n\u{1}"),
                ],
            })
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect action=\"/call-complete?callSid=CA1&amp;x=&quot;y&quot;\">\
             <Stream url=\"wss://media.example.com/s?a=1&amp;b=&lt;2&gt;\">\
             <Parameter name=\"asapp_callTransferId\" value=\"CA1\"/>\
             <Parameter name=\"input_note\" value=\"a&lt;b&amp;c&gt;&quot;d&apos;&#9;&#10;\u{FFFD}\"/>\
             </Stream></Connect></Response>"
        );
    }

    #[test]
    fn renders_connect_stream_without_action() {
        let twiml = VoiceResponse::new()
            .verb(Verb::Connect {
                action: None,
                noun: Noun::Stream {
                    url: "wss://m/s".into(),
                },
                parameters: vec![parameter("a", "1")],
            })
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"wss://m/s\">\
             <Parameter name=\"a\" value=\"1\"/></Stream></Connect></Response>"
        );
    }

    #[test]
    fn renders_connect_connector_as_an_empty_element_with_escaped_attributes() {
        let twiml = VoiceResponse::new()
            .verb(Verb::Say {
                text: "Connecting you".into(),
            })
            .then(VoiceResponse::new().verb(Verb::ConnectConnector {
                connector_id: "conn-\"1\"&<2>".into(),
                action: "https://fb.example.com/polyai/call-complete".into(),
            }))
            .render();
        assert_eq!(
            twiml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Connecting you</Say>\
             <Connect connectorId=\"conn-&quot;1&quot;&amp;&lt;2&gt;\" action=\"https://fb.example.com/polyai/call-complete\"/>\
             </Response>"
        );
    }
}
