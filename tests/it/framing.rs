//! The inspector cannot be framed or fed: every `/_emu/` answer (the page, its stylesheet and
//! script, the JSON views, the event stream, and the 403, 404, 405 and 413 answers) carries a
//! `Content-Security-Policy` with `frame-ancestors 'none'` and `default-src 'self'`,
//! `X-Frame-Options: DENY` and `X-Content-Type-Options: nosniff`; the page itself holds no
//! inline script or style, so that policy lets it run.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Emu, WAIT, Webhook};

/// The status and headers (lower-case names) of one request, read up to the end of the head
/// (so an event stream need not end).
async fn head(port: u16, request: &[u8]) -> (u16, HashMap<String, String>) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // The server may answer and close before reading an oversized body.
    let _ = stream.write_all(request).await;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(
            n > 0,
            "closed without a head: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&got[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

fn request(method: &str, path: &str, port: u16, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{port}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    text.extend_from_slice(body);
    text
}

#[tokio::test]
async fn every_admin_answer_forbids_framing_and_sniffing() {
    let hook = Webhook::start().await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let port = emu.port;
    let big = vec![b'x'; 70 * 1024];
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("page", request("GET", "/_emu/", port, "", b""), 200),
        (
            "stylesheet",
            request("GET", "/_emu/inspector.css", port, "", b""),
            200,
        ),
        (
            "script",
            request("GET", "/_emu/inspector.js", port, "", b""),
            200,
        ),
        ("status", request("GET", "/_emu/status", port, "", b""), 200),
        (
            "connections",
            request("GET", "/_emu/connections", port, "", b""),
            200,
        ),
        ("lint", request("GET", "/_emu/lint", port, "", b""), 200),
        ("faults", request("GET", "/_emu/faults", port, "", b""), 200),
        ("export", request("GET", "/_emu/export", port, "", b""), 200),
        ("events", request("GET", "/_emu/events", port, "", b""), 200),
        (
            "gone entry",
            request("GET", "/_emu/entries/99999", port, "", b""),
            404,
        ),
        (
            "unknown path",
            request("GET", "/_emu/nothing", port, "", b""),
            404,
        ),
        (
            "wrong method",
            request("POST", "/_emu/status", port, "", b""),
            405,
        ),
        (
            "foreign origin",
            request(
                "GET",
                "/_emu/",
                port,
                "Origin: http://evil.example\r\n",
                b"",
            ),
            403,
        ),
        (
            "too large",
            request("POST", "/_emu/faults", port, "", &big),
            413,
        ),
    ];
    for (what, raw, want) in cases {
        let (status, headers) = head(port, &raw).await;
        assert_eq!(status, want, "{what}: {headers:?}");
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy in {headers:?}"));
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(
            directives.contains(&"frame-ancestors 'none'"),
            "{what}: {csp}"
        );
        assert!(directives.contains(&"default-src 'self'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(
            headers.get("x-frame-options").map(String::as_str),
            Some("DENY"),
            "{what}"
        );
        assert_eq!(
            headers.get("x-content-type-options").map(String::as_str),
            Some("nosniff"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn the_page_is_html_plus_a_stylesheet_and_a_script_without_inline_code() {
    let hook = Webhook::start().await;
    let emu = Emu::start(&["--webhook", &hook.template(), "--anonymous"]);
    let base = emu.base();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { crate::util::http("GET", &url, &[], "").await }
    };
    let page = get("/_emu/").await;
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        page.body
            .contains(r#"<link rel="stylesheet" href="/_emu/inspector.css">"#)
    );
    assert!(
        page.body
            .contains(r#"<script src="/_emu/inspector.js"></script>"#)
    );
    assert!(!page.body.contains("<style"), "no inline style element");
    assert!(!page.body.contains(" style="), "no inline style attribute");
    let scripts: Vec<&str> = page.body.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "the page has its script");
    for script in scripts {
        assert!(
            script.starts_with(" src=\"/_emu/"),
            "every script by URL, none inline: <script{script}"
        );
    }
    for (path, kind, inside) in [
        (
            "/_emu/inspector.css",
            "text/css; charset=utf-8",
            "font-family",
        ),
        (
            "/_emu/inspector.js",
            "text/javascript; charset=utf-8",
            "EventSource",
        ),
    ] {
        let asset = get(path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.headers["content-type"], kind, "{path}");
        assert!(asset.body.contains(inside), "{path}");
    }
}
