//! The shapes of values and how messages show them: what a serial and a userId look like,
//! and values cut and quoted for the report and for error messages.

/// How many characters of a value a message or an invalid row's echo carries.
pub(crate) const ECHO_CHARS: usize = 64;

/// The longest serial, token or device.
pub(crate) const MAX_SERIAL_CHARS: usize = 36;

/// 1–36 characters of `[A-Za-z0-9]`.
pub(crate) fn is_serial(v: &str) -> bool {
    (1..=MAX_SERIAL_CHARS).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// 8-4-4-4-12 hex digits, any case. No version or variant check: real tenants use ids that
/// are not RFC 4122 UUIDs.
pub(crate) fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    let hex = |part: &[u8]| part.iter().all(u8::is_ascii_hexdigit);
    // Indexing cannot panic: the length is checked first.
    b.len() == 36
        && b[8] == b'-'
        && b[13] == b'-'
        && b[18] == b'-'
        && b[23] == b'-'
        && hex(&b[..8])
        && hex(&b[9..13])
        && hex(&b[14..18])
        && hex(&b[19..23])
        && hex(&b[24..])
}

/// The first `ECHO_CHARS` characters of `s`, cut on a character boundary.
pub(crate) fn truncate_chars(s: &str) -> &str {
    match s.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// A header name or value made fit for a one-line message: at most 64 characters, control
/// characters escaped, in double quotes.
pub(crate) fn show(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(80) + 2);
    out.push('"');
    let mut chars = value.chars();
    for c in chars.by_ref().take(ECHO_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_only() {
        assert!(is_uuid("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert!(is_uuid("3F2504E0-4f89-11D3-9a0c-0305E82C3301"));
        // Not RFC 4122 (version 0, odd variant) but UUID-shaped: accepted.
        assert!(is_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(is_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
        assert!(!is_uuid("3f2504e04f8911d39a0c0305e82c3301"));
        assert!(!is_uuid("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"));
        assert!(!is_uuid("3f2504e0-4f89-11d3-9a0c-0305e82c330g"));
        assert!(!is_uuid("3f2504e0-4f89-11d3-9a0c-0305e82c33011"));
        assert!(!is_uuid("3f2504e0_4f89-11d3-9a0c-0305e82c3301"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn serial_shape() {
        assert!(is_serial("014010008038"));
        assert!(is_serial("a"));
        assert!(is_serial(&"Z".repeat(36)));
        assert!(!is_serial(&"Z".repeat(37)));
        assert!(!is_serial(""));
        assert!(!is_serial("0140-1000"));
        assert!(!is_serial("Ä1"));
    }

    #[test]
    fn truncation_is_char_boundary_safe() {
        assert_eq!(truncate_chars("abc"), "abc");
        let s = "€".repeat(70);
        assert_eq!(truncate_chars(&s), "€".repeat(64));
        let s = format!("{}{}", "a".repeat(63), "😀😀");
        assert_eq!(truncate_chars(&s), format!("{}😀", "a".repeat(63)));
    }

    #[test]
    fn show_truncates_and_escapes() {
        assert_eq!(show("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(100);
        let shown = show(&long);
        assert_eq!(shown.chars().filter(|&c| c == 'é').count(), 64);
        assert!(shown.ends_with("…\""));
    }
}
