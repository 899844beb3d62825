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

/// The longest email address (RFC 5321's path limit less its angle brackets).
pub(crate) const MAX_EMAIL_CHARS: usize = 254;

/// Why `v` is not an email address, or `None` when it has the shape of one: one `@`, something
/// before it, a domain with a dot between non-empty labels after it, no spaces, control
/// characters or the punctuation that only appears around or between addresses
/// (`Ann <ann@example.com>`, `a@example.com; b@example.com`, `mailto:`). The shape only: whether
/// the tenant knows the address is for its lookup to say.
pub(crate) fn email_problem(v: &str) -> Option<&'static str> {
    if v.chars().count() > MAX_EMAIL_CHARS {
        return Some("it is longer than 254 characters");
    }
    if v.chars().any(char::is_whitespace) {
        return Some("it contains a space (one address per row, nothing around it)");
    }
    if v.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    if v.chars().any(|c| "<>()[]\\,;:\"".contains(c)) {
        return Some(
            "it contains one of < > ( ) [ ] \\ , ; : \" (one bare address per row, no name, \
             list or mailto:)",
        );
    }
    let Some((local, domain)) = v.split_once('@') else {
        return Some("it has no @");
    };
    if domain.contains('@') {
        return Some("it has more than one @ (one address per row)");
    }
    if local.is_empty() {
        return Some("nothing comes before the @");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Some("the part before the @ starts or ends with a dot, or has two in a row");
    }
    if !domain.contains('.') {
        return Some("the part after the @ has no dot (a domain such as example.com)");
    }
    if domain.split('.').any(str::is_empty) {
        return Some("the part after the @ starts or ends with a dot, or has two in a row");
    }
    None
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
    fn email_shape() {
        for ok in [
            "ann.leaver@acme.com",
            "Ann.Leaver@ACME.example.co.uk",
            "a+tag@x.io",
            "o'brien@example.com",
            "jürgen@bücher.example",
            "x@y.z",
        ] {
            assert_eq!(email_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("ann", "no @"),
            ("ann@acme", "no dot"),
            ("@acme.com", "before the @"),
            ("a@b@acme.com", "more than one @"),
            ("ann leaver@acme.com", "a space"),
            ("ann@acme.com\u{a0}", "a space"),
            ("ann@acme.com\u{0}", "control"),
            ("Ann <ann@acme.com>", "a space"),
            ("<ann@acme.com>", "one of"),
            ("mailto:ann@acme.com", "one of"),
            ("a@acme.com;b@acme.com", "one of"),
            ("ann@.acme.com", "starts or ends"),
            ("ann@acme.com.", "starts or ends"),
            ("ann@acme..com", "starts or ends"),
            (".ann@acme.com", "before the @ starts"),
            ("ann..l@acme.com", "before the @ starts"),
        ] {
            let got = email_problem(bad).unwrap_or_else(|| panic!("accepted {bad:?}"));
            assert!(got.contains(why), "{bad:?}: {got}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.chars().count(), 255);
        assert!(email_problem(&long).is_some_and(|w| w.contains("254")));
        assert_eq!(email_problem(&long[1..]), None);
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
