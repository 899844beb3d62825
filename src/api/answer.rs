//! Whether an answer is the DS100 API's own. A gateway, proxy, load balancer or sign-in portal
//! in front of the tenant (or a base URL with a wrong path) answers with the same status codes
//! as the API: its 404 is not "the credential is gone", its 200 is not "deleted". Only an answer
//! shaped like the API's may count as either.

use serde_json::Value;

use super::exchange::{Answer, excerpt};

/// What to check when something other than the API answered.
pub(crate) const NOT_THE_API_HINT: &str = "check --base-url (the tenant's origin, e.g. \
     https://acme.access.securid.com) and any proxy, gateway or load balancer in between";

/// How long the quoted part of a foreign body may be.
const QUOTE_MAX: usize = 120;

/// `None` when a 404 looks like the API's (a JSON object or array, or no body); otherwise what
/// answered instead, quoting its first line. An HTML page is never the API's, even when its
/// body happens to parse.
pub(crate) fn foreign_404(answer: &Answer) -> Option<String> {
    if looks_like_markup(answer) {
        return Some(format!(
            "an HTML page, not the API's answer ({})",
            quote(answer)
        ));
    }
    if body_is_blank(answer) || json_document(&answer.body).is_some() {
        return None;
    }
    Some(format!(
        "a non-JSON answer, not the API's ({})",
        quote(answer)
    ))
}

/// What a 2xx to a DELETE means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DeleteSuccess {
    /// Deleted; the body, when there is one, as one short line for the report's note.
    Deleted { body: Option<String> },
    /// Nothing says the credential was deleted: why.
    NotDeleted(String),
}

/// Reads a 2xx answer to a DELETE. The API answers 200 with no body; 204 is the same
/// statement. An HTML page (a sign-in portal), a body that reports an error, or a 2xx that
/// says "accepted, not done" (202) never counts as a deletion.
pub(crate) fn delete_success(answer: &Answer) -> DeleteSuccess {
    if looks_like_markup(answer) {
        return DeleteSuccess::NotDeleted(format!(
            "DELETE answered {} with an HTML page, not the API ({}): nothing says it was \
             deleted; {NOT_THE_API_HINT}",
            answer.status,
            quote(answer)
        ));
    }
    if let Some(why) = body_error(answer) {
        return DeleteSuccess::NotDeleted(format!(
            "DELETE answered {} but its body reports an error ({why}): {}",
            answer.status,
            quote(answer)
        ));
    }
    if !matches!(answer.status, 200 | 204) {
        return DeleteSuccess::NotDeleted(format!(
            "DELETE answered {}, not the API's 200: nothing says it was deleted ({}); \
             {NOT_THE_API_HINT}",
            answer.status,
            quote(answer)
        ));
    }
    if body_is_blank(answer) {
        DeleteSuccess::Deleted { body: None }
    } else {
        DeleteSuccess::Deleted {
            body: Some(format!(
                "DELETE answered {} with a body: {}",
                answer.status,
                line(answer)
            )),
        }
    }
}

/// `Some(why)` when a 2xx answer to a PATCH (`what`: how the report names it) cannot be the
/// API's statement that it changed something: an HTML page, a body that reports an error, or a
/// status other than 200 (a 202 "accepted" is not "done"). Whether the body names the row's
/// credential is for the caller to read (`patch::parse_patch`).
pub(crate) fn foreign_change_success(answer: &Answer, what: &str) -> Option<String> {
    if looks_like_markup(answer) {
        return Some(format!(
            "{what} answered {} with an HTML page, not the API ({}): nothing says it changed \
             anything; {NOT_THE_API_HINT}",
            answer.status,
            quote(answer)
        ));
    }
    if let Some(why) = body_error(answer) {
        return Some(format!(
            "{what} answered {} but its body reports an error ({why}): {}",
            answer.status,
            quote(answer)
        ));
    }
    if answer.status != 200 {
        return Some(format!(
            "{what} answered {}, not the API's 200 with the credentials it changed ({}); \
             {NOT_THE_API_HINT}",
            answer.status,
            quote(answer)
        ));
    }
    None
}

/// `Some(why)` when a 2xx answer to a lookup is not a list of records the API could have sent:
/// a declared HTML page, or a body that reports an error (whose envelope might otherwise read
/// as an empty list, i.e. "the device holds nothing"). Any other body that is not JSON is left
/// to the lookup's parser, which refuses it.
pub(crate) fn foreign_lookup_success(answer: &Answer) -> Option<String> {
    foreign_read_success(answer, "lookup")
}

/// `foreign_lookup_success` for any read-only call, named `what` in the message (`lookup`,
/// `users/lookup`).
pub(crate) fn foreign_read_success(answer: &Answer, what: &str) -> Option<String> {
    if answer.html && !body_is_blank(answer) {
        return Some(format!(
            "{what} answered {} with an HTML page, not the API ({}); {NOT_THE_API_HINT}",
            answer.status,
            quote(answer)
        ));
    }
    body_error(answer).map(|why| {
        format!(
            "{what} answered {} but its body reports an error ({why}): {}",
            answer.status,
            quote(answer)
        )
    })
}

/// The body's first non-blank line as a short printable quote, plus the page title of an HTML
/// page (its first line is often just `<html>`). Bearer tokens a proxy might echo are masked.
pub(crate) fn quote(answer: &Answer) -> String {
    if body_is_blank(answer) {
        return "empty body".to_string();
    }
    let first = format!("first line: \"{}\"", line(answer));
    match html_title(&answer.body) {
        Some(title) if !title.is_empty() => format!("{first}, title: \"{title}\""),
        _ => first,
    }
}

/// The body's first non-blank line, one printable line of at most `QUOTE_MAX` characters.
fn line(answer: &Answer) -> String {
    let text = String::from_utf8_lossy(&answer.body);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    mask_secrets(&excerpt(first, QUOTE_MAX))
}

fn body_is_blank(answer: &Answer) -> bool {
    answer.body.iter().all(u8::is_ascii_whitespace)
}

/// Declared HTML (`Content-Type: text/html`), or a body that starts like markup (HTML or XML,
/// whatever the Content-Type says): JSON never starts with `<`.
fn looks_like_markup(answer: &Answer) -> bool {
    if answer.html && !body_is_blank(answer) {
        return true;
    }
    let body = answer
        .body
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&answer.body);
    body.trim_ascii_start().starts_with(b"<")
}

/// The body as a JSON object or array; `None` for anything else (a bare string or number is
/// what text pages such as `404` or `"Not Found"` parse as, not an API document).
fn json_document(body: &[u8]) -> Option<Value> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => None,
    }
}

/// `Some(why)` when a body reports failure: a JSON document with an error field, a false
/// success flag, a failing status or a message that starts like a failure; or a text body
/// that starts like one ("Error: …", "Failed to …").
fn body_error(answer: &Answer) -> Option<String> {
    if body_is_blank(answer) {
        return None;
    }
    match json_document(&answer.body) {
        Some(doc) => json_error(&doc),
        None => starts_like_a_failure(&String::from_utf8_lossy(&answer.body))
            .then(|| "the text starts like a failure".to_string()),
    }
}

/// Whether a text's first word says something failed.
fn starts_like_a_failure(text: &str) -> bool {
    let first_word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        first_word.as_str(),
        "error"
            | "errors"
            | "failed"
            | "failure"
            | "fail"
            | "exception"
            | "fault"
            | "unable"
            | "cannot"
            | "denied"
            | "unauthorized"
            | "forbidden"
            | "invalid"
    )
}

fn json_error(doc: &Value) -> Option<String> {
    match doc {
        Value::Object(map) => object_error(map),
        Value::Array(items) => items.iter().find_map(|item| match item {
            Value::Object(map) => object_error(map),
            _ => None,
        }),
        _ => None,
    }
}

/// The first field of `map` that says the request failed, as `name: value`.
fn object_error(map: &serde_json::Map<String, Value>) -> Option<String> {
    map.iter().find_map(|(name, value)| {
        let key: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let failed = match key.as_str() {
            "error" | "errors" | "errorcode" | "errormessage" | "errormsg" | "errordescription"
            | "errordetail" | "errordetails" | "errortype" | "fault" | "exception" | "failure" => {
                is_present(value)
            }
            "success" | "succeeded" | "successful" | "ok" => is_false(value),
            "iserror" | "haserror" | "haserrors" | "failed" => value == &Value::Bool(true),
            "message" | "msg" | "detail" | "details" | "description" | "reason" => {
                value.as_str().is_some_and(starts_like_a_failure)
            }
            "status" | "result" | "outcome" | "state" => {
                is_failure_word(value) || is_4xx_5xx(value)
            }
            "statuscode" | "httpstatus" | "httpstatuscode" | "code" => is_4xx_5xx(value),
            _ => false,
        };
        failed.then(|| format!("{name}: {}", excerpt(&value.to_string(), 60)))
    })
}

/// A field that carries something: not null, false, "", [] or {}.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(true) | Value::Number(_) => true,
    }
}

fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("false"),
        _ => false,
    }
}

fn is_failure_word(value: &Value) -> bool {
    let Value::String(s) = value else {
        return false;
    };
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "error"
            | "errors"
            | "fail"
            | "failed"
            | "failure"
            | "fault"
            | "rejected"
            | "denied"
            | "unauthorized"
            | "forbidden"
            | "not_found"
            | "notfound"
    )
}

fn is_4xx_5xx(value: &Value) -> bool {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.is_some_and(|n| (400..=599).contains(&n))
}

/// The `<title>` of an HTML page, as one short line.
fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    Some(mask_secrets(&excerpt(&text[start..end], 80)))
}

/// Masks what a proxy's error page might echo from the request: the word after `Bearer`, and
/// anything shaped like a JWT (`eyJ….….…`).
fn mask_secrets(line: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut after_bearer = false;
    for word in line.split(' ') {
        let jwt_like = word.contains("eyJ") && word.matches('.').count() >= 2;
        if after_bearer || jwt_like {
            out.push("[redacted]".to_string());
        } else {
            out.push(word.to_string());
        }
        // `Bearer` ends the word also when quoted as JSON: `"Authorization":"Bearer`.
        after_bearer = word
            .trim_end_matches(|c: char| !c.is_ascii_alphabetic())
            .to_ascii_lowercase()
            .ends_with("bearer");
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn answer(status: u16, content_type_html: bool, body: &str) -> Answer {
        Answer {
            status,
            retry_after: None,
            html: content_type_html,
            body: Bytes::from(body.to_string()),
        }
    }

    const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
        <center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

    #[test]
    fn only_json_or_empty_404s_are_the_apis() {
        for api in [
            answer(404, false, ""),
            answer(404, false, " \r\n"),
            answer(
                404,
                false,
                r#"{"status":404,"error":"Not Found","message":"x"}"#,
            ),
            answer(404, false, "[]"),
            answer(404, false, "\u{feff}{\"message\":\"x\"}"),
        ] {
            assert_eq!(foreign_404(&api), None, "{api:?}");
        }
        for (foreign, want) in [
            (answer(404, true, NGINX_404), "404 Not Found"),
            (answer(404, false, NGINX_404), "<html>"),
            (
                answer(404, false, "404 page not found\n"),
                "404 page not found",
            ),
            (answer(404, false, "Not Found"), "Not Found"),
            (answer(404, false, "404"), "404"),
            (answer(404, false, "\"Not Found\""), "Not Found"),
            (
                answer(404, true, r#"{"message":"json in an html wrapper"}"#),
                "json",
            ),
            (answer(404, false, "<?xml version=\"1.0\"?><error/>"), "xml"),
        ] {
            let why = foreign_404(&foreign).unwrap_or_else(|| panic!("{foreign:?}"));
            assert!(why.contains(want), "{why}");
        }
        let why = foreign_404(&answer(404, true, NGINX_404)).unwrap();
        assert!(why.contains("first line: \"<html>\""), "{why}");
        assert!(why.contains("title: \"404 Not Found\""), "{why}");
    }

    #[test]
    fn a_200_is_a_deletion_only_without_an_error_or_a_page() {
        assert_eq!(
            delete_success(&answer(200, false, "")),
            DeleteSuccess::Deleted { body: None }
        );
        assert_eq!(
            delete_success(&answer(204, false, "")),
            DeleteSuccess::Deleted { body: None }
        );
        for ok in [
            r#"{"message":"deleted"}"#,
            r#"{"status":"success","error":null,"errors":[]}"#,
            r#"{"success":true,"errorCode":""}"#,
            r#"{"status":200}"#,
            r#"{"message":"Credential deleted","failed":false}"#,
            "OK",
        ] {
            match delete_success(&answer(200, false, ok)) {
                DeleteSuccess::Deleted { body: Some(note) } => {
                    assert!(note.contains("with a body"), "{note}")
                }
                other => panic!("{ok}: {other:?}"),
            }
        }
        for (bad, want) in [
            (r#"{"status":"error","message":"nope"}"#, "status"),
            (
                r#"{"errorCode":"E1001","errorMessage":"Token not found"}"#,
                "errorCode",
            ),
            (r#"{"error":{"code":7}}"#, "error"),
            (r#"{"error_message":"boom"}"#, "error_message"),
            (r#"{"success":false}"#, "success"),
            (r#"{"Success":"false"}"#, "Success"),
            (r#"{"status":500,"message":"x"}"#, "status"),
            (r#"{"statusCode":"403"}"#, "statusCode"),
            (r#"[{"errors":["a"]}]"#, "errors"),
            (r#"{"result":"FAILED"}"#, "result"),
            (r#"{"isError":true}"#, "isError"),
            (
                r#"{"message":"Failed to delete the authenticator"}"#,
                "message",
            ),
            ("Unable to process the request", "failure"),
            ("Error: credential not deleted", "error"),
            ("<!DOCTYPE html><html><title>Sign in</title>", "HTML page"),
            ("  <html>", "HTML page"),
        ] {
            match delete_success(&answer(200, false, bad)) {
                DeleteSuccess::NotDeleted(why) => assert!(why.contains(want), "{bad}: {why}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match delete_success(&answer(202, false, "")) {
            DeleteSuccess::NotDeleted(why) => assert!(why.contains("202"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_patch_200_counts_only_when_it_is_the_apis() {
        let ok = r#"[{"userId":"u","tokenSerialNumber":"1","tokenStatus":"Disabled"}]"#;
        assert_eq!(
            foreign_change_success(&answer(200, false, ok), "PATCH"),
            None
        );
        for (bad, want) in [
            (answer(200, true, ok), "HTML page"),
            (
                answer(200, false, "<html><title>Sign in</title>"),
                "HTML page",
            ),
            (
                answer(200, false, r#"{"status":"error"}"#),
                "reports an error",
            ),
            (
                answer(200, false, r#"[{"error":"nope"}]"#),
                "reports an error",
            ),
            (answer(202, false, ok), "not the API's 200"),
            (answer(204, false, ""), "not the API's 200"),
        ] {
            let why = foreign_change_success(&bad, "PATCH disable/otp").expect(want);
            assert!(
                why.contains(want) && why.contains("PATCH disable/otp"),
                "{why}"
            );
        }
    }

    #[test]
    fn a_lookup_200_reporting_an_error_is_not_an_empty_list() {
        assert!(foreign_lookup_success(&answer(200, false, "[]")).is_none());
        assert!(foreign_lookup_success(&answer(200, false, r#"[{"userId":"u"}]"#)).is_none());
        assert!(foreign_lookup_success(&answer(200, false, r#"{"data":[]}"#)).is_none());
        for bad in [
            r#"{"status":"error","errors":[]}"#,
            r#"{"error":"x","data":[]}"#,
        ] {
            assert!(
                foreign_lookup_success(&answer(200, false, bad)).is_some(),
                "{bad}"
            );
        }
        assert!(foreign_lookup_success(&answer(200, true, "[]")).is_some());
    }

    #[test]
    fn quotes_are_short_printable_and_never_carry_a_token() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        let q = quote(&answer(404, false, &long));
        assert!(q.chars().count() < 160 && !q.contains("second"), "{q}");
        let q = quote(&answer(
            404,
            false,
            "denied: Authorization: Bearer abc.def-123 from 10.0.0.1",
        ));
        assert!(
            !q.contains("abc.def-123") && q.contains("[redacted]"),
            "{q}"
        );
        let q = quote(&answer(
            403,
            false,
            r#"{"headers":{"Authorization":"Bearer opaque-123"}}"#,
        ));
        assert!(!q.contains("opaque-123"), "{q}");
        let q = quote(&answer(
            404,
            false,
            "token eyJhbGciOi.eyJzdWIi.c2ln was refused",
        ));
        assert!(!q.contains("eyJ"), "{q}");
        assert_eq!(
            quote(&answer(404, false, "a\u{1b}[31mb")),
            "first line: \"a [31mb\""
        );
    }
}
