//! `builtin:chat`: the broadcast half of the chat handler, done the way an Azure Function does it.
//!
//! For each user event the handler calls the service's own REST API, exactly as the Functions
//! output binding's `SendToNamespace(ns, event, args, except: [sender])` would (docs/protocol.md §7.3, §7.4):
//! `POST {endpoint}/api/hubs/{hub}/groups/0~b64(ns)~/:send?api-version=2024-01-01&filter=not%20('0~b64(ns)~b64(socketId)'%20in%20groups)`,
//! `Content-Type: text/plain`, the event without its ack id as body, and a REST Bearer token
//! whose `aud` is that URL, signed with the primary access key. The call goes over real HTTP to
//! the emulator's listener, so it shows in the live log and the recording like any other REST
//! call. [`super`] then answers the webhook with the ack, as `builtin:echo` does.

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::echo::UserEvent;
use crate::auth::{self, TokenClaims};
use crate::service::group::{namespace_group, room_group};

/// The REST api-version the handler sends (the one docs/protocol.md §7 documents).
pub const API_VERSION: &str = "2024-01-01";
/// How long one broadcast call may take before the webhook call fails with 502.
pub const REST_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime of the REST token minted for each call (what the .NET SDK uses).
const REST_TOKEN_LIFETIME_SECS: u64 = 300;
/// Bytes of an error answer quoted in the failure message.
const ERROR_BODY_PREVIEW: usize = 200;

/// Everything but RFC 3986 unreserved characters and the `'()` an OData filter is made of, so
/// the filter reads `not%20('0~L2NoYXQ~czE'%20in%20groups)` as the SDKs write it.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The REST URL that sends to namespace `nsp` of `hub`, except socket `socket_id`.
pub fn broadcast_url(endpoint: &str, hub: &str, nsp: &str, socket_id: &str) -> String {
    let filter = format!("not ('{}' in groups)", room_group(nsp, socket_id));
    format!(
        "{}/api/hubs/{}/groups/{}/:send?api-version={API_VERSION}&filter={}",
        endpoint.trim_end_matches('/'),
        utf8_percent_encode(hub, QUERY_VALUE),
        utf8_percent_encode(&namespace_group(nsp), QUERY_VALUE),
        utf8_percent_encode(&filter, QUERY_VALUE),
    )
}

/// The REST client of one chat handler (a keep-alive pool to the emulator).
pub struct Broadcaster {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Broadcaster {
    fn default() -> Self {
        Broadcaster {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Broadcaster {
    /// Sends `event` (without its ack id) to every other socket of its namespace. The error is
    /// a sentence for the webhook's 502 body, which the live log shows.
    pub async fn broadcast(
        &self,
        endpoint: &str,
        key: &str,
        hub: &str,
        socket_id: &str,
        event: &UserEvent<'_>,
    ) -> Result<(), String> {
        let url = broadcast_url(endpoint, hub, event.nsp, socket_id);
        let token = auth::mint(
            key,
            &TokenClaims {
                aud: url.clone(),
                lifetime_secs: REST_TOKEN_LIFETIME_SECS,
                now: auth::now_unix(),
                ..TokenClaims::default()
            },
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(CONTENT_TYPE, "text/plain")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(event.without_id())))
            .map_err(|e| format!("builtin:chat built an invalid REST request for {url}: {e}"))?;
        let response = tokio::time::timeout(REST_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                format!(
                    "builtin:chat: the REST broadcast POST {url} got no answer within {}",
                    crate::duration::format(REST_TIMEOUT)
                )
            })?
            .map_err(|e| format!("builtin:chat: the REST broadcast POST {url} failed: {e}"))?;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            return Ok(());
        }
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let text: String = text.chars().take(ERROR_BODY_PREVIEW).collect();
        Err(format!(
            "builtin:chat: the REST broadcast POST {url} answered {status} (expected 202 Accepted): {text}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_matches_the_documented_example() {
        // docs/protocol.md §12: namespace /chat, socket s1.
        assert_eq!(
            broadcast_url("http://localhost:8080", "hub", "/chat", "s1"),
            "http://localhost:8080/api/hubs/hub/groups/0~L2NoYXQ~/:send?api-version=2024-01-01&filter=not%20('0~L2NoYXQ~czE'%20in%20groups)"
        );
        assert_eq!(
            broadcast_url("http://localhost:1/", "a`b", "/", "x"),
            "http://localhost:1/api/hubs/a%60b/groups/0~Lw~/:send?api-version=2024-01-01&filter=not%20('0~Lw~eA'%20in%20groups)"
        );
    }
}
