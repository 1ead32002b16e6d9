//! What a webhook hop carries for the inspector to show the call as it was sent: the request
//! is rebuilt from the event (the session line) and the `ce-id` / `ce-time` kept here, with the
//! same function that built it; the answer's headers are kept here, redacted.
//! Plain data, so the layers that make the call and the inspector that reads it share no flag.

use std::time::SystemTime;

/// A webhook call's details kept by its ring entry.
#[derive(Debug, Clone)]
pub struct CallDetails {
    /// The call's `ce-id`.
    pub ce_id: String,
    /// The call's `ce-time`.
    pub ce_time: SystemTime,
    /// The answer's headers (name, value), when there was an answer: copies, so that they do
    /// not keep the connection's read buffer alive, with secret values redacted
    /// ([`super::redact`]).
    pub answer_headers: Option<Vec<(String, String)>>,
}

impl CallDetails {
    /// The details of a call stamped `ce_id` / `ce_time` whose answer had `headers`.
    pub fn new(
        ce_id: String,
        ce_time: SystemTime,
        headers: Option<&http::HeaderMap>,
    ) -> CallDetails {
        let answer_headers = headers.map(|headers| {
            let mut pairs: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            super::redact::redact_pairs(&mut pairs);
            pairs
        });
        CallDetails {
            ce_id,
            ce_time,
            answer_headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_secret_headers_are_not_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert("set-cookie", "s1".parse().unwrap());
        headers.insert("x-session-token", "s2".parse().unwrap());
        headers.insert("content-type", "text/plain".parse().unwrap());
        let kept = CallDetails::new("1".into(), SystemTime::UNIX_EPOCH, Some(&headers))
            .answer_headers
            .unwrap();
        let value = |name: &str| kept.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(value("set-cookie"), "<redacted>");
        assert_eq!(value("x-session-token"), "<redacted>");
        assert_eq!(value("content-type"), "text/plain");
    }
}
