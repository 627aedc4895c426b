//! `flexbridge sign`, used as the README says: run it, paste its curl
//! command, and the running service accepts the request.

use std::process::{Command, Stdio};

use crate::process::{flexbridge, start_binary};

const TOKEN: &str = "sign-test-token-5f1c0e";
const SHARED_KEY_SECRET: &str = "sign-test-shared-key-9b2d4a";

/// Run `flexbridge sign` with `args`; return (exit code, stdout, stderr).
fn sign(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    sign_with(args, &[("TWILIO_AUTH_TOKEN", token)])
}

/// [`sign`] with these variables set (those with a value).
fn sign_with(args: &[&str], env: &[(&str, Option<&str>)]) -> (i32, String, String) {
    let mut command = flexbridge();
    command.arg("sign").args(args);
    for (name, value) in env {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let out = command.output().expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run the printed curl command through a shell, as a user pasting it would.
fn run_pasted(curl: &str, dir: &std::path::Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{curl} -w '\\nstatus=%{{http_code}}'"))
        .current_dir(dir)
        .output()
        .expect("sh and curl run");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Twilio's documented example request (its auth token is `12345`).
const DOCUMENTED_EXAMPLE: [&str; 7] = [
    "--url",
    "https://mycompany.com/myapp.php?foo=1&bar=2",
    "CallSid=CA1234567890ABCDE",
    "Caller=+14158675310",
    "Digits=1234",
    "From=+14158675310",
    "To=+18005551212",
];

#[test]
fn sign_prints_twilios_documented_signature() {
    // A token read from a file keeps its newline; the service trims it, and
    // so does `sign`.
    for token in ["12345", "12345\n"] {
        let (code, out, _) = sign(&DOCUMENTED_EXAMPLE, Some(token));

        assert_eq!(code, 0, "{token:?}");
        assert!(
            out.starts_with("X-Twilio-Signature: GvWf1cFY/Q7PnoempGyD5oXAezc=\ncurl "),
            "{token:?}: {out}"
        );
    }
}

/// With `--shared-key`, the HMAC-SHA256 twilio-node computes with that
/// secret (`tests/fixtures/shared_key_cases.json`), and the settings header.
#[test]
fn sign_with_a_shared_key_prints_twilios_hmac_sha256_and_the_settings_header() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/shared_key_cases.json")).unwrap();
    let documented = fixture["derived_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == "twilio docs example")
        .unwrap();
    let args = [&["--shared-key"][..], &DOCUMENTED_EXAMPLE].concat();

    let (code, out, _) = sign_with(
        &args,
        &[
            ("TWILIO_AUTH_TOKEN", Some("not-this-one")),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", Some("12345")),
        ],
    );
    let (missing, _, err) = sign_with(&args, &[("TWILIO_AUTH_TOKEN", Some("12345"))]);

    assert_eq!(code, 0);
    let expected = format!(
        "X-Twilio-Signature: {}\nX-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256\ncurl ",
        documented["signature"].as_str().unwrap()
    );
    assert!(out.starts_with(&expected), "{out}");
    assert_eq!(missing, 2);
    assert!(
        err.contains("set TWILIO_WEBHOOK_SHARED_KEY_SECRET, the secret Twilio signs with"),
        "{err}"
    );
}

#[test]
fn sign_without_a_token_explains_what_to_set() {
    for token in [None, Some(" \n")] {
        let (code, out, err) = sign(&["--url", "https://a.b/receive-call"], token);

        assert_eq!(code, 2, "{token:?}");
        assert!(out.is_empty(), "{token:?}");
        assert!(err.contains("set TWILIO_AUTH_TOKEN"), "{token:?}: {err}");
    }
}

/// What cannot be signed is refused with exit 2 and the reason, and nothing
/// on stdout to paste: a parameter without `=`, a body file that cannot be
/// read, parameters and a body at once, and a URL whose `bodySHA256` is
/// another body's.
#[test]
fn sign_refuses_what_it_cannot_sign() {
    let url = "https://a.b/receive-call";
    let dir = std::env::temp_dir();
    let no_body = dir.join("flexbridge-sign-test-no-such-body.json");
    let no_body = no_body.to_str().unwrap();
    let body = dir.join(format!("flexbridge-sign-test-{}.json", std::process::id()));
    std::fs::write(&body, r#"{"a":1}"#).unwrap();
    let body = body.to_str().unwrap();
    let hashed = format!("{url}?bodySHA256=abc");
    let cases: [(&[&str], String); 4] = [
        (
            &["--url", url, "CallSid"],
            "flexbridge sign: parameter \"CallSid\" is not NAME=VALUE\n".to_owned(),
        ),
        (
            &["--url", url, "--body", no_body],
            format!("flexbridge sign: cannot read {no_body}: "),
        ),
        (
            &["--url", url, "--body", body, "CallSid=CA1"],
            "flexbridge sign: give either NAME=VALUE parameters or --body, not both\n".to_owned(),
        ),
        (
            &["--url", &hashed, "--body", body],
            "flexbridge sign: the URL's bodySHA256 does not match the body's SHA-256 \
             (015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862)\n"
                .to_owned(),
        ),
    ];
    for (args, reason) in cases {
        let (code, out, err) = sign(args, Some(TOKEN));

        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.starts_with(&reason), "{args:?}: {err}");
    }
    std::fs::remove_file(body).unwrap();
}

/// The pasted form and JSON commands are accepted, and so is one signed
/// with the SharedKey secret; the same command with a parameter changed is
/// refused; and nothing secret reaches the logs.
#[tokio::test]
async fn the_pasted_curl_command_is_accepted_by_a_running_instance() {
    let process = start_binary(
        &["serve"],
        &[
            ("TWILIO_AUTH_TOKEN", TOKEN),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", SHARED_KEY_SECRET),
            ("SIP_URI_HOST", "sip.example.com"),
            (
                "STUDIO_WEBHOOK_URL",
                "https://webhooks.twilio.com/v1/Flows/FW1",
            ),
        ],
    )
    .await;
    let dir = std::env::temp_dir();
    let url = format!("{}/receive-call", process.address);

    let (code, out, _) = sign(
        &[
            "--url",
            &url,
            "Called=+18005551234",
            "CallSid=CA0123456789abcdef0123456789abcdef",
        ],
        Some(TOKEN),
    );
    assert_eq!(code, 0);
    let signature = out
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("X-Twilio-Signature: ")
        .to_owned();
    let curl = out.lines().nth(1).unwrap();
    let accepted = run_pasted(curl, &dir);
    let tampered = run_pasted(&curl.replace("+18005551234", "+18005550000"), &dir);

    let body_file = dir.join(format!("flexbridge-sign-{}.json", process.port));
    std::fs::write(&body_file, br#"{"note":"it's JSON"}"#).unwrap();
    let (code, out, _) = sign(
        &["--url", &url, "--body", body_file.to_str().unwrap()],
        Some(TOKEN),
    );
    assert_eq!(code, 0);
    let json_accepted = run_pasted(out.lines().nth(1).unwrap(), &dir);
    let _ = std::fs::remove_file(&body_file);
    let (code, out, _) = sign_with(
        &["--shared-key", "--url", &url, "Called=+18005551234"],
        &[("TWILIO_WEBHOOK_SHARED_KEY_SECRET", Some(SHARED_KEY_SECRET))],
    );
    assert_eq!(code, 0);
    let shared_key_accepted = run_pasted(out.lines().nth(2).unwrap(), &dir);

    let logs = process.stop_and_read_logs();
    assert!(
        accepted.contains("<Sip>sip:+18005551234@sip.example.com;secure=true</Sip>"),
        "{accepted}"
    );
    assert!(accepted.ends_with("status=200"), "{accepted}");
    assert!(
        tampered.ends_with("invalid X-Twilio-Signature\n\nstatus=403"),
        "{tampered}"
    );
    assert!(json_accepted.ends_with("status=200"), "{json_accepted}");
    assert!(
        shared_key_accepted.ends_with("status=200"),
        "{shared_key_accepted}"
    );
    assert!(
        logs.contains("request refused"),
        "the rejection is logged: {logs}"
    );
    assert!(!logs.contains(TOKEN), "the auth token is never logged");
    assert!(
        !logs.contains(SHARED_KEY_SECRET),
        "nor the SharedKey secret"
    );
    assert!(!logs.contains(&signature), "signatures are never logged");
}

/// Output that cannot be written fails the command (exit 1) without a
/// panic. A reader that went away (`flexbridge sign … | head -1`) is no
/// error worth a word; any other failure, such as a full disk, is said on
/// stderr.
#[test]
fn output_that_cannot_be_written_fails_and_only_a_departed_reader_goes_unremarked() {
    // The reading end is closed before the process starts, so its first
    // write fails whatever the timing.
    let (reader, departed) = std::io::pipe().expect("a pipe");
    drop(reader);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let cases: [(Stdio, &str); 2] = [
        (departed.into(), ""),
        (
            full.into(),
            "flexbridge: cannot write the output: No space left on device (os error 28)\n",
        ),
    ];
    for (stdout, expected) in cases {
        let out = flexbridge()
            .args(["sign", "--url", "https://example.com/receive-call", "A=1"])
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .stdout(stdout)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);

        assert_eq!((out.status.code(), stderr.as_ref()), (Some(1), expected));
    }
}
