//! Unit tests of REST request parsing: query values, api-version, ttl, filters, group and id
//! rules, media types, the URL as received, the Authorization header and the body bound.

use super::*;
use http::HeaderValue;
use http_body_util::Full;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    map
}

#[test]
fn query_values() {
    let q = Query::parse(Some(
        "api-version=2024-01-01&excluded=a&Excluded=b&excluded=&filter=userId%20eq%20%27x%27&reason=bye+now",
    ));
    assert_eq!(q.get("api-version"), Some("2024-01-01"));
    assert_eq!(q.excluded(), vec!["a", "b"]);
    assert!(q.filter().is_ok());
    assert_eq!(q.close_reason(), "closed by REST API: bye now");
    assert_eq!(Query::parse(None).close_reason(), "closed by REST API");
    assert_eq!(
        Query::parse(Some("reason=")).close_reason(),
        "closed by REST API"
    );
}

#[test]
fn api_version_is_required() {
    let quiet = |_: String| {};
    assert!(matches!(
        Query::parse(Some("x=1")).api_version(&quiet),
        Err(RestError::MissingApiVersion)
    ));
    assert_eq!(
        Query::parse(Some("api-version=1999-01-01"))
            .api_version(&quiet)
            .unwrap(),
        "1999-01-01"
    );
}

#[test]
fn unknown_versions_are_logged_once() {
    assert!(first_sighting("test-only-version"));
    assert!(!first_sighting("test-only-version"));
}

#[test]
fn ttl_bounds() {
    let ttl = |q: &str| Query::parse(Some(q)).message_ttl();
    assert_eq!(ttl("").unwrap(), None);
    assert_eq!(ttl("messageTtlSeconds=0").unwrap(), Some(0));
    assert_eq!(ttl("messageTtlSeconds=300").unwrap(), Some(300));
    assert!(ttl("messageTtlSeconds=301").is_err());
    assert!(ttl("messageTtlSeconds=-1").is_err());
    assert!(ttl("messageTtlSeconds=x").is_err());
}

#[test]
fn bad_filter_names_the_position() {
    let error = Query::parse(Some("filter=userId%20eq"))
        .filter()
        .unwrap_err();
    let RestError::InvalidFilter { error: e, text, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(e.position, 9);
    assert_eq!(text, "userId eq");
    assert!(error.to_string().contains("position 9"), "{error}");
}

#[test]
fn group_and_id_rules() {
    assert!(check_group("group", "g").is_ok());
    assert!(check_group("group", "0~Lw~").is_ok());
    assert!(check_group("group", "").is_err());
    assert!(check_group("group", "   ").is_err());
    assert!(check_group("group", &"g".repeat(1024)).is_ok());
    assert!(check_group("group", &"g".repeat(1025)).is_err());
    assert!(check_id("userId", "").is_err());
    assert!(check_id("userId", " ").is_ok());
}

#[test]
fn media_types() {
    assert_eq!(send_media_type(&headers(&[])).unwrap(), BodyKind::Text);
    assert_eq!(
        send_media_type(&headers(&[("content-type", "text/plain; charset=utf-8")])).unwrap(),
        BodyKind::Text
    );
    assert_eq!(
        send_media_type(&headers(&[("content-type", "Application/JSON")])).unwrap(),
        BodyKind::Text
    );
    assert_eq!(
        send_media_type(&headers(&[("content-type", "application/octet-stream")])).unwrap(),
        BodyKind::Binary
    );
    assert!(matches!(
        send_media_type(&headers(&[("content-type", "image/png")])),
        Err(RestError::UnsupportedMediaType { .. })
    ));
    assert!(json_media_type(&headers(&[("content-type", "application/json")])).is_ok());
    assert!(json_media_type(&headers(&[("content-type", "text/plain")])).is_err());
}

#[test]
fn url_as_received() {
    let (parts, _) = http::Request::builder()
        .uri("/api/hubs/h/:send?api-version=2024-01-01&filter=a%20b")
        .header("host", "localhost:8080")
        .body(())
        .unwrap()
        .into_parts();
    assert_eq!(
        request_url(&parts, "x"),
        "http://localhost:8080/api/hubs/h/:send?api-version=2024-01-01&filter=a%20b"
    );
}

#[test]
fn authorization_header() {
    let keys = vec![crate::auth::DEV_ACCESS_KEY.to_owned()];
    let url = "http://localhost:8080/api/hubs/h/:send?api-version=2024-01-01";
    let token = crate::auth::mint(
        &keys[0],
        &crate::auth::TokenClaims {
            aud: url.into(),
            lifetime_secs: 300,
            now: crate::auth::now_unix(),
            ..Default::default()
        },
    );
    let with = |v: &str| headers(&[("authorization", v)]);
    assert!(authorize(&with(&format!("Bearer {token}")), &keys, url).is_ok());
    assert!(authorize(&with(&format!("bearer {token}")), &keys, url).is_ok());
    let check = |h: &HeaderMap| match authorize(h, &keys, url) {
        Err(RestError::Unauthorized(r)) => r.check,
        other => panic!("{other:?}"),
    };
    assert_eq!(check(&headers(&[])), crate::auth::Check::Missing);
    assert_eq!(check(&with("Basic abc")), crate::auth::Check::Missing);
    assert_eq!(check(&with("Bearer x.y")), crate::auth::Check::Malformed);
    let other_url = "http://localhost:8080/api/hubs/h/:send?api-version=2024-12-01&x=1";
    assert_eq!(
        match authorize(&with(&format!("Bearer {token}")), &keys, other_url) {
            Err(RestError::Unauthorized(r)) => r.check,
            other => panic!("{other:?}"),
        },
        crate::auth::Check::Aud
    );
}

#[tokio::test]
async fn body_bound() {
    let body = Full::new(Bytes::from_static(b"0123456789"));
    assert_eq!(
        read_body(&HeaderMap::new(), body.clone(), 10)
            .await
            .unwrap(),
        "0123456789"
    );
    assert!(matches!(
        read_body(&HeaderMap::new(), body, 9).await,
        Err(RestError::PayloadTooLarge { max: 9 })
    ));
    let declared = headers(&[("content-length", "100")]);
    assert!(matches!(
        read_body(&declared, Full::new(Bytes::new()), 9).await,
        Err(RestError::PayloadTooLarge { .. })
    ));
}

#[test]
fn api_supported_versions_lists_the_known_versions() {
    assert_eq!(API_SUPPORTED_VERSIONS, KNOWN_API_VERSIONS.join(", "));
}
