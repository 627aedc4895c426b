//! Percent-decoding, shared by form bodies and SIP headers.

/// Decode once: `%` with two hex digits becomes the byte they spell, any
/// other `%` stays as it is (as `percent_encoding::percent_decode` does),
/// and with `plus_is_space` (form encoding) `+` becomes a space. A `+` is
/// never part of an escape, so this equals replacing `+` first and
/// percent-decoding after, as the URL crate does. The text between escapes
/// is copied in runs into a buffer allocated once (decoding never
/// lengthens).
pub(crate) fn percent_decode(bytes: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let next = |from| {
        if plus_is_space {
            next_of(bytes, from, [b'%', b'+'])
        } else {
            next_of(bytes, from, [b'%'])
        }
    };
    let mut start = 0;
    let mut at = next(0);
    while let Some(&marker) = bytes.get(at) {
        out.extend_from_slice(&bytes[start..at]);
        start = at + 1;
        if marker == b'+' {
            out.push(b' ');
        } else if let Some(byte) = escaped_byte(bytes, at + 1) {
            out.push(byte);
            start = at + 3;
        } else {
            out.push(b'%');
        }
        at = next(start);
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

/// The byte spelled by the two hex digits at `at`, if there are two.
pub(crate) fn escaped_byte(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 2) {
        Some(&[high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
            Some(hex_value(high) << 4 | hex_value(low))
        }
        _ => None,
    }
}

/// The index of the first of `targets` at or after `from`, or the length:
/// eight bytes at a time, as SIDs, numbers and escaped values (a SIP
/// `Refer-To`) run long without one.
fn next_of<const N: usize>(bytes: &[u8], from: usize, targets: [u8; N]) -> usize {
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        if let Some(at) = first_of(chunk, targets) {
            return i + at;
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|b| targets.contains(b))
        .map_or(bytes.len(), |p| i + p)
}

/// Where the first of `targets` is in `chunk`, if anywhere: a few word
/// operations per target instead of eight comparisons.
pub(crate) fn first_of<const N: usize>(chunk: [u8; 8], targets: [u8; N]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let word = u64::from_le_bytes(chunk);
    // High bit set in each byte equal to a target (and possibly in bytes
    // after one, which the lowest set bit rules out).
    let found = targets.iter().fold(0, |found, &target| {
        let x = word ^ u64::from_ne_bytes([target; 8]);
        found | (x.wrapping_sub(ONES) & !x & HIGH)
    });
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// The value of an ASCII hex digit (callers check that it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The word-at-a-time searches find the first target wherever it is.
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
            for targets in [&b"&"[..], b"&=+%"] {
                let expected = bytes[from..]
                    .iter()
                    .position(|b| targets.contains(b))
                    .map_or(bytes.len(), |p| from + p);
                let found = match *targets {
                    [a] => next_of(&bytes, from, [a]),
                    [a, b, c, d] => next_of(&bytes, from, [a, b, c, d]),
                    _ => unreachable!(),
                };
                proptest::prop_assert_eq!(found, expected);
            }
        }

        /// Without `plus_is_space`, decoding equals the percent-encoding
        /// crate's, escapes valid or not.
        #[test]
        fn decodes_like_percent_encoding(text in "[a%0-9A-Fa-fgZ\u{e9}+]{0,64}") {
            let expected: Vec<u8> = percent_encoding::percent_decode(text.as_bytes()).collect();
            proptest::prop_assert_eq!(percent_decode(text.as_bytes(), false), expected);
        }

        /// With it, it equals replacing `+` by a space, then percent-decoding.
        #[test]
        fn decodes_forms_like_plus_then_percent_encoding(text in "[a%0-9A-Fa-fgZ\u{e9}+]{0,64}") {
            let spaced = text.replace('+', " ");
            let expected: Vec<u8> = percent_encoding::percent_decode(spaced.as_bytes()).collect();
            proptest::prop_assert_eq!(percent_decode(text.as_bytes(), true), expected);
        }
    }

    #[test]
    fn decodes_escapes_once_and_keeps_invalid_ones() {
        for (text, plus_is_space, expected) in [
            ("", false, &b""[..]),
            ("%", false, b"%"),
            ("%4", false, b"%4"),
            ("a%41%4g%%41", false, b"aA%4g%A"),
            ("%253A", false, b"%3A"),
            ("%ff%FE+", false, b"\xff\xfe+"),
            ("%ff%FE+", true, b"\xff\xfe "),
            ("a+%2B+", true, b"a + "),
            ("%C3%A9\u{e9}", false, "\u{e9}\u{e9}".as_bytes()),
        ] {
            assert_eq!(
                percent_decode(text.as_bytes(), plus_is_space),
                expected,
                "{text:?}"
            );
        }
    }
}
