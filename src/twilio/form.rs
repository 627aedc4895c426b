//! Decoded `application/x-www-form-urlencoded` parameters: a webhook's body
//! or query string, as every webhook and tool request reads it before its
//! signature is checked.

use std::fmt;
use std::ops::Range;

use crate::domain::{next_of, percent_decode_into};

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
        let mut decoder = Decoder {
            bytes,
            // Decoding never lengthens valid text; only U+FFFD replacing an
            // invalid byte can, and then the buffer grows.
            out: Self {
                text: String::with_capacity(bytes.len()),
                pairs: Vec::with_capacity(count_ampersands(bytes) + 1),
            },
            scratch: Vec::new(),
        };
        // Validating the whole input once lets every piece of valid text (cut
        // at ASCII `&` and `=`, so still valid) be copied without a check of
        // its own.
        let text = std::str::from_utf8(bytes).ok();
        for_each_piece(bytes, |piece| {
            let name_start = decoder.out.text.len();
            decoder.append(text, piece.name, piece.name_escaped);
            let value_start = decoder.out.text.len();
            decoder.append(text, piece.value, piece.value_escaped);
            let end = decoder.out.text.len();
            decoder.out.pairs.push([name_start, value_start, end]);
        });
        decoder.out
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

/// The state of one [`FormParams::decode`].
struct Decoder<'a> {
    bytes: &'a [u8],
    out: FormParams,
    /// Escaped pieces are decoded here first, as they may not be UTF-8.
    scratch: Vec<u8>,
}

impl Decoder<'_> {
    /// Append the name or value at `range` to the text, decoded. `text` is
    /// the whole input when it is valid UTF-8.
    fn append(&mut self, text: Option<&str>, range: Range<usize>, escaped: bool) {
        let out = &mut self.out.text;
        if !escaped {
            match text.and_then(|text| text.get(range.clone())) {
                Some(plain) => out.push_str(plain),
                None => out.push_str(&String::from_utf8_lossy(&self.bytes[range])),
            }
            return;
        }
        self.scratch.clear();
        percent_decode_into(&self.bytes[range], true, &mut self.scratch);
        match std::str::from_utf8(&self.scratch) {
            Ok(decoded) => out.push_str(decoded),
            Err(_) => out.push_str(&String::from_utf8_lossy(&self.scratch)),
        }
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

/// One non-empty `&`-separated piece: where its name and value are, and
/// whether each holds a `+` or `%` that decoding changes.
struct Piece {
    name: Range<usize>,
    value: Range<usize>,
    name_escaped: bool,
    value_escaped: bool,
}

// The bytes the scanner stops at; every other byte is copied as it is.
const AMPERSAND: u8 = 1;
const EQUALS: u8 = 2;
const ESCAPE: u8 = 3;
/// The class of each byte value: one of the above, or 0.
const CLASS: [u8; 256] = {
    let mut class = [0; 256];
    class[b'&' as usize] = AMPERSAND;
    class[b'=' as usize] = EQUALS;
    class[b'+' as usize] = ESCAPE;
    class[b'%' as usize] = ESCAPE;
    class
};

/// Call `each` for every non-empty piece, in order: one pass over the
/// input finds the separators and the escapes together, skipping the
/// bytes between them a word at a time.
fn for_each_piece(bytes: &[u8], mut each: impl FnMut(Piece)) {
    let mut start = 0;
    let mut equals: Option<usize> = None;
    let (mut name_escaped, mut value_escaped) = (false, false);
    let mut finish =
        |start: usize, end: usize, equals: Option<usize>, name_escaped, value_escaped| {
            if start < end {
                each(Piece {
                    name: start..equals.unwrap_or(end),
                    value: equals.map_or(end, |e| e + 1)..end,
                    name_escaped,
                    value_escaped,
                });
            }
        };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match CLASS[usize::from(b)] {
            AMPERSAND => {
                finish(start, i, equals, name_escaped, value_escaped);
                start = i + 1;
                equals = None;
                (name_escaped, value_escaped) = (false, false);
            }
            EQUALS if equals.is_none() => equals = Some(i),
            ESCAPE if equals.is_none() => name_escaped = true,
            ESCAPE => {
                // Nothing else in this value matters: skip to its end.
                value_escaped = true;
                i = next_ampersand(bytes, i + 1);
                continue;
            }
            _ => {}
        }
        i = next_special(bytes, i + 1);
    }
    finish(start, bytes.len(), equals, name_escaped, value_escaped);
}

/// The index of the first `&` at or after `from`, or the length.
fn next_ampersand(bytes: &[u8], from: usize) -> usize {
    next_of(bytes, from, [b'&'])
}

/// The index of the first byte at or after `from` the scanner stops at
/// (see [`CLASS`]), or the length.
fn next_special(bytes: &[u8], from: usize) -> usize {
    next_of(bytes, from, [b'&', b'=', b'+', b'%'])
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
        ] {
            assert_eq!(decode_form(input), reference(input), "{input:?}");
        }
    }

    proptest::proptest! {
        /// The word-at-a-time searches find the first `&`, and the first
        /// of `&=+%`, wherever it is.
        #[test]
        fn word_searches_find_the_first(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"&%+=\x26\xa6\x25\x27\x00\xff".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..40,
            ),
            from in 0usize..41,
        ) {
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(bytes.len(), |p| from + p);
            proptest::prop_assert_eq!(next_ampersand(&bytes, from), expected);
            let expected = bytes[from..]
                .iter()
                .position(|&b| CLASS[usize::from(b)] != 0)
                .map_or(bytes.len(), |p| from + p);
            proptest::prop_assert_eq!(next_special(&bytes, from), expected);
        }

        /// Long escaped values, whose end is found a word at a time.
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
