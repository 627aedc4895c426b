//! Print the TwiML flexbridge answers for a sample watsonx transfer, without
//! starting a server.
//!
//! Run with `cargo run --example render_twiml [REFER_TO]`.

use flexbridge::config::Settings;
use flexbridge::domain::ReferTo;
use flexbridge::voice::{Handback, hand_back};

fn main() {
    let refer_to = std::env::args().nth(1).unwrap_or_else(|| {
        "<sip:+18005551234@twilio.com?User-to-User=dev%3A%3Alatest%3A%3A893499%3A%3Aabc%3Bencoding%3Dascii\
         &X-Watson-Assistant-Session-History-Key=dev%3A%3Alatest%3A%3A893499%3A%3Aabc&X-Customer-Tier=gold>"
            .to_owned()
    });
    // The demo settings of `flexbridge --dev`, with the real environment on top.
    let settings = match Settings::from_env(true) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("configuration: {e}");
            std::process::exit(2);
        }
    };
    let parsed = match ReferTo::parse(&refer_to) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("not a Refer-To value: {e}");
            std::process::exit(1);
        }
    };
    let key = parsed.session_history_key();
    let handback = Handback {
        key: key.as_ref().ok(),
        error: key.as_ref().err().map(|e| e.code()),
        refer_to: Some(&parsed),
        ..Handback::default()
    };
    for header in parsed.headers() {
        println!("header {}: {}", header.name, header.value_lossy());
    }
    println!("{}", hand_back(&settings, &handback).render());
}
