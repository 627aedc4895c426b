//! Phone numbers in E.164 form, the only thing allowed into a SIP URI's user part.

/// A number of the form `+` followed by 3 to 15 digits.
///
/// This is deliberately narrower than what Twilio may send in `Called`: a SIP
/// URI or anything with `@`, `;` or `?` could redirect the dial to another host
/// or add SIP headers, so such values never become an `E164`.
#[derive(Clone, PartialEq, Eq)]
pub struct E164(String);

/// Why a text is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an E.164 number (expected + and 3 to 15 digits)")]
pub struct E164Error;

impl E164 {
    /// Parse `text` as `+` and 3–15 ASCII digits, nothing else (no spaces).
    ///
    /// # Errors
    /// For anything else.
    pub fn parse(text: &str) -> Result<Self, E164Error> {
        let digits = text.strip_prefix('+').ok_or(E164Error)?;
        if (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(E164Error)
        }
    }
}

as_text!(E164, |v| &v.0, display);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plus_and_3_to_15_digits() {
        for good in ["+123", "+18005551234", "+123456789012345"] {
            assert_eq!(E164::parse(good).unwrap().as_ref(), good);
        }
    }

    #[test]
    fn rejects_everything_that_could_change_the_sip_uri() {
        for bad in [
            "",
            "+",
            "+12",
            "+1234567890123456",
            "18005551234",
            "+1800 555 1234",
            "+1800@evil.com",
            "1@evil.com",
            "+1800;transport=tcp",
            "+1800?X-Header=1",
            "sip:+18005551234@example.com",
            "+1800555123４",
            "+18005551234\n",
            " +18005551234",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
