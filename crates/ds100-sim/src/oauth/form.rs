//! `application/x-www-form-urlencoded` bodies (the token request), decoded by hand: the
//! simulator needs no URL library for a handful of `name=value` pairs.

/// The pairs of a form body, in order, `+` and `%XX` decoded. `None` when it is not a form
/// (bad UTF-8 or a broken escape), as a server would answer `invalid_request`.
pub(crate) fn decode(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(name)?, unescape(value)?))
        })
        .collect()
}

/// The one value of `name`; `Err` when it is given twice (RFC 6749 §3.2: parameters must not
/// repeat).
pub(crate) fn single<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, String> {
    let mut found = pairs.iter().filter(|(n, _)| n == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(format!("the parameter {name} is repeated"));
    }
    Ok(first)
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_browsers_and_clients_encode_them() {
        let pairs = decode(b"grant_type=client_credentials&scope=a+b%2Fc&empty=&flag").unwrap();
        assert_eq!(
            pairs,
            [
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), "a b/c".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(single(&pairs, "scope"), Ok(Some("a b/c")));
        assert_eq!(single(&pairs, "nope"), Ok(None));
        let twice = decode(b"a=1&a=2").unwrap();
        assert!(single(&twice, "a").is_err());
        assert!(decode(b"a=%zz").is_none());
        assert!(decode(b"a=%4").is_none());
        assert!(decode(b"a=%ff").is_none(), "not UTF-8 once decoded");
        assert_eq!(decode(b"").unwrap(), []);
    }
}
