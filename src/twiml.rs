//! TwiML documents, written through quick-xml so that every attribute and
//! text is escaped by construction.
//!
//! Only the verbs flexbridge answers with exist here; each is a typed value,
//! so a route cannot put a noun where Twilio does not accept it.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

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
    /// `<Connect action><Stream url><Parameter name value/>…</Stream></Connect>`:
    /// a bidirectional media stream to an AI agent.
    ConnectStream {
        /// Where Twilio asks for the next TwiML when the stream ends; without
        /// it the call goes on to the next verb.
        action: Option<String>,
        /// The `wss://` URL of the stream.
        url: String,
        /// Custom parameters the far end receives in the stream's `start` message.
        parameters: Vec<StreamParameter>,
    },
    /// `<Connect connectorId action/>`: hand the call to a vendor's connector.
    ConnectConnector {
        /// The connector's identifier.
        connector_id: String,
        /// Where Twilio asks for the next TwiML when the connector hands the call back.
        action: String,
    },
}

/// One `<Parameter name value/>` of a `<Stream>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParameter {
    /// The parameter's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl VoiceResponse {
    /// An empty response.
    pub fn new() -> Self {
        Self::default()
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
        let mut writer = Writer::new(Vec::new());
        // Writing into a Vec cannot fail; if it ever did, a minimal valid
        // document keeps the call alive rather than sending broken XML.
        match self.write(&mut writer) {
            Ok(()) => String::from_utf8(writer.into_inner())
                .unwrap_or_else(|_| MINIMAL_RESPONSE.to_owned()),
            Err(_) => MINIMAL_RESPONSE.to_owned(),
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

fn write_verb(w: &mut Writer<Vec<u8>>, verb: &Verb) -> std::io::Result<()> {
    match verb {
        Verb::DialSip {
            answer_on_bridge,
            refer_url,
            sip_uri,
        } => {
            w.create_element("Dial")
                .with_attribute((
                    "answerOnBridge",
                    if *answer_on_bridge { "true" } else { "false" },
                ))
                .with_attribute(("referUrl", xml_safe(refer_url).as_ref()))
                .write_inner_content(|w| {
                    w.create_element("Sip")
                        .write_text_content(BytesText::new(&xml_safe(sip_uri)))
                        .map(|_| ())
                })?;
        }
        Verb::Redirect { url } => {
            w.create_element("Redirect")
                .with_attribute(("method", "POST"))
                .write_text_content(BytesText::new(&xml_safe(url)))?;
        }
        Verb::Enqueue {
            workflow_sid,
            task_attributes,
        } => {
            w.create_element("Enqueue")
                .with_attribute(("workflowSid", workflow_sid.as_ref()))
                .write_inner_content(|w| {
                    w.create_element("Task")
                        .write_text_content(BytesText::new(&xml_safe(task_attributes)))
                        .map(|_| ())
                })?;
        }
        Verb::Say { text } => {
            w.create_element("Say")
                .write_text_content(BytesText::new(&xml_safe(text)))?;
        }
        Verb::Hangup => {
            w.create_element("Hangup").write_empty()?;
        }
        Verb::ConnectStream {
            action,
            url,
            parameters,
        } => {
            let action = action.as_deref().map(xml_safe);
            let mut connect = w.create_element("Connect");
            if let Some(action) = &action {
                connect = connect.with_attribute(("action", action.as_ref()));
            }
            connect.write_inner_content(|w| {
                w.create_element("Stream")
                    .with_attribute(("url", xml_safe(url).as_ref()))
                    .write_inner_content(|w| {
                        parameters.iter().try_for_each(|p| {
                            w.create_element("Parameter")
                                .with_attribute(("name", xml_safe(&p.name).as_ref()))
                                .with_attribute(("value", xml_safe(&p.value).as_ref()))
                                .write_empty()
                                .map(|_| ())
                        })
                    })
                    .map(|_| ())
            })?;
        }
        Verb::ConnectConnector {
            connector_id,
            action,
        } => {
            w.create_element("Connect")
                .with_attribute(("connectorId", xml_safe(connector_id).as_ref()))
                .with_attribute(("action", xml_safe(action).as_ref()))
                .write_empty()?;
        }
    }
    Ok(())
}

/// Replace characters XML 1.0 forbids even when escaped (most C0 controls,
/// U+FFFE, U+FFFF) with U+FFFD, so no input can make a document ill-formed.
pub fn xml_safe(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }
    if text.chars().all(allowed) {
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

    fn parameter(name: &str, value: &str) -> StreamParameter {
        StreamParameter {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn renders_connect_stream_with_action_and_escaped_parameters() {
        let twiml = VoiceResponse::new()
            .verb(Verb::ConnectStream {
                action: Some("/call-complete?callSid=CA1&x=\"y\"".into()),
                url: "wss://media.example.com/s?a=1&b=<2>".into(),
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
            .verb(Verb::ConnectStream {
                action: None,
                url: "wss://m/s".into(),
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
