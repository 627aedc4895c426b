//! Decoded `application/x-www-form-urlencoded` parameters: a webhook's body
//! or query string, as every webhook and tool request reads it before its
//! signature is checked.

use std::fmt;

use crate::domain::first_of;

/// Form parameters in the order sent, repeated names kept (Twilio's
/// signature covers every one of them).
///
/// Names and values are decoded into one buffer, `name || value` for each
/// pair in order: two allocations per request instead of two per
/// parameter, and, when the pairs are already in Twilio's signing order,
/// exactly the bytes the signature covers after the URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FormParams {
    text: String,
    /// For each pair: where its name starts, where its value starts (the
    /// name's end) and where the value ends, in `text`.
    pairs: Vec<[usize; 3]>,
}

impl FormParams {
    /// Decode a body or query string.
    ///
    /// Never fails: malformed escapes stay literal, `+` is a space, and
    /// invalid UTF-8 becomes U+FFFD, which is what Twilio's own parsers do
    /// with such input too. The pairs are exactly
    /// `url::form_urlencoded::parse`'s (the `form_decode` fuzz target checks
    /// it).
    pub fn decode(bytes: &[u8]) -> Self {
        // An absent query string is the common case: no allocation for it.
        if bytes.is_empty() {
            return Self::default();
        }
        // Replacing invalid UTF-8 piece by piece is the URL crate's job;
        // Twilio never sends it, so it need not be fast.
        decode_utf8(bytes).unwrap_or_else(|| url::form_urlencoded::parse(bytes).collect())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone + '_ {
        self.pairs.iter().map(|&[name, value, end]| {
            (
                self.text.get(name..value).unwrap_or_default(),
                self.text.get(value..end).unwrap_or_default(),
            )
        })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every name and value one after the other, in order: what a
    /// signature covers when the pairs are in its order.
    pub(crate) fn concatenated(&self) -> &str {
        &self.text
    }

    /// The pairs as owned strings.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for FormParams {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let start = params.text.len();
            params.text.push_str(name.as_ref());
            let value_start = params.text.len();
            params.text.push_str(value.as_ref());
            params.pairs.push([start, value_start, params.text.len()]);
        }
        params
    }
}

impl fmt::Debug for FormParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The bytes decoding stops at; every other byte is copied as it is.
const SPECIAL: [u8; 4] = [b'&', b'=', b'+', b'%'];

/// [`FormParams::decode`] in one pass into one buffer, or `None` when a name
/// or value does not decode to UTF-8.
fn decode_utf8(bytes: &[u8]) -> Option<FormParams> {
    // Decoding never lengthens: `written <= read` throughout, so a buffer
    // of the input's length holds every write.
    let mut out = vec![0; bytes.len()];
    let mut pairs = Vec::with_capacity(count_ampersands(bytes) + 1);
    let (mut read, mut written) = (0, 0);
    // Where the current piece starts in the input, where its name starts
    // in the output, and where its value starts once its `=` is seen.
    let (mut piece, mut name) = (0, 0);
    let mut value = None;
    loop {
        copy_run(bytes, &mut read, &mut out, &mut written);
        let Some(&special) = bytes.get(read) else {
            break;
        };
        read += 1;
        let decoded = match special {
            b'&' => {
                // Empty pieces (`&&`) are no pair at all.
                if read - 1 > piece {
                    pairs.push([name, value.unwrap_or(written), written]);
                }
                (piece, name, value) = (read, written, None);
                continue;
            }
            b'=' if value.is_none() => {
                value = Some(written);
                continue;
            }
            b'=' => b'=',
            b'+' => b' ',
            _ => match crate::domain::escaped_byte(bytes, read) {
                Some(byte) => {
                    read += 2;
                    byte
                }
                None => b'%',
            },
        };
        *out.get_mut(written)? = decoded;
        written += 1;
    }
    if bytes.len() > piece {
        pairs.push([name, value.unwrap_or(written), written]);
    }
    out.truncate(written);
    let text = String::from_utf8(out).ok()?;
    // Valid as a whole and cut at character boundaries: every name and
    // value is valid on its own, as the URL crate decodes each.
    pairs
        .iter()
        .flatten()
        .all(|&at| text.is_char_boundary(at))
        .then_some(FormParams { text, pairs })
}

/// Copy bytes from `read` up to the next [`SPECIAL`] byte (or the end),
/// eight at a time while eight remain, advancing both positions.
fn copy_run(bytes: &[u8], read: &mut usize, out: &mut [u8], written: &mut usize) {
    while let (Some(chunk), Some(to)) = (
        bytes.get(*read..*read + 8),
        out.get_mut(*written..*written + 8),
    ) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            return;
        };
        // Copying the special byte and what follows it is harmless:
        // `written` advances only past the plain bytes, and whatever lies
        // beyond it is overwritten or truncated later.
        to.copy_from_slice(&chunk);
        if let Some(at) = first_of(chunk, SPECIAL) {
            *read += at;
            *written += at;
            return;
        }
        *read += 8;
        *written += 8;
    }
    while let (Some(&byte), Some(to)) = (bytes.get(*read), out.get_mut(*written)) {
        if SPECIAL.contains(&byte) {
            return;
        }
        *to = byte;
        *read += 1;
        *written += 1;
    }
}

/// How many `&` there are: at most one pair more than that.
fn count_ampersands(bytes: &[u8]) -> usize {
    // Byte-sized counters over short chunks cannot overflow and let the
    // compiler compare sixteen bytes at a time.
    bytes
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'&')))
        })
        .map(usize::from)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(bytes).into_owned().collect()
    }

    fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
        FormParams::decode(bytes).to_vec()
    }

    #[test]
    fn parameters_keep_order_and_repeats_and_look_up_the_first() {
        let params = FormParams::decode(b"To=%2B1800&CallSid=CA1&To=%2B1900&Digits=&Caller=a+b");
        assert_eq!(params.iter().len(), 5);
        assert_eq!(params.get("To"), Some("+1800"));
        assert_eq!(params.get("Digits"), Some(""));
        assert_eq!(params.get("Caller"), Some("a b"));
        assert_eq!(params.get("caller"), None);
        assert_eq!(
            params.concatenated(),
            "To+1800CallSidCA1To+1900DigitsCallera b"
        );
        assert_eq!(
            format!("{params:?}"),
            r#"[("To", "+1800"), ("CallSid", "CA1"), ("To", "+1900"), ("Digits", ""), ("Caller", "a b")]"#
        );
        let rebuilt: FormParams = params.to_vec().into_iter().collect();
        assert_eq!(rebuilt, params);
        assert_eq!(FormParams::decode(b"").iter().len(), 0);
        assert_eq!(FormParams::decode(b"&&").iter().len(), 0);
    }

    #[test]
    fn decodes_like_the_url_crate_on_edge_cases() {
        for input in [
            &b""[..],
            b"a=1&a=2&b",
            b"%ZZ=%&+=+",
            b"x=%F0%9F%98%80&%C3%28=bad",
            b"&&=&",
            b"Called=%2B18005551234&CallerCity=SAN+FRANCISCO",
            b"k=\xff\xfe&\xc3=%C3",
            b"a==b=c&=",
            b"%",
            b"a=%",
            b"a=%4",
            b"a=%4g&b=%g4",
            b"a=%%41",
            b"a=%+41&b=%4+1",
            b"+++=++",
            b"=",
            b"=v&n=",
            b"%41%42=%61%62",
            b"a=%e2%82%ac&b=%E2%82%AC",
            b"a=%e2%82&b=%ff",
            b"a=%C3%A9\xc3\xa9",
            b"\xff",
            b"\xff=%41+b",
            b"ok=1&bad=\xe2\x82&ok2=%C3%A9",
            b"\xe2\x82\xac=\xe2\x82\xac&%e2%82%ac",
            b"%26%3D=%2B%25&%2525=%%",
            // Valid UTF-8 as a whole, but a character cut between a name
            // and its value, or between two pairs.
            b"%C3=%A9",
            b"a%C3&%A9b",
            b"\xc3=\xa9&=",
            b"%E2%82=%AC",
        ] {
            assert_eq!(decode_form(input), reference(input), "{input:?}");
        }
    }

    proptest::proptest! {
        /// Long escaped values and long runs, copied a word at a time.
        #[test]
        fn decodes_long_escaped_values_like_the_url_crate(
            pieces in proptest::collection::vec("[a-zA-Z0-9%+=&]{0,3}(%[0-9A-Fa-f]{2}|[a-z+&=]){0,24}", 0..6),
        ) {
            let bytes = pieces.concat();
            proptest::prop_assert_eq!(decode_form(bytes.as_bytes()), reference(bytes.as_bytes()));
        }
    }

    proptest::proptest! {
        /// Any bytes decode exactly as `url::form_urlencoded::parse` decodes them.
        #[test]
        fn decodes_any_bytes_like_the_url_crate(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"&=+%".to_vec()),
                proptest::sample::select(b"0123456789abcdefABCDEFZz".to_vec()),
                proptest::num::u8::ANY,
            ],
            0..64,
        )) {
            proptest::prop_assert_eq!(decode_form(&bytes), reference(&bytes));
        }
    }
}
