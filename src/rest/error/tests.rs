//! Unit tests of REST errors: every error's status, code, body and headers (`Allow`,
//! the failed check, the filter position).

use super::*;
use crate::auth::Check;
use http_body_util::BodyExt;

async fn body_json(response: HttpResponse) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn every_error_has_status_code_and_header() {
    let cases: Vec<(RestError, u16, &str)> = vec![
        (
            RestError::NoSuchRoute {
                path: "/api/x".into(),
            },
            404,
            "NotFound",
        ),
        (
            RestError::MethodNotAllowed {
                method: "GET".into(),
                path: "/api/hubs/h/:send".into(),
                allowed: "POST".into(),
            },
            405,
            "MethodNotAllowed",
        ),
        (
            RestError::InvalidHubName { hub: "1".into() },
            400,
            "InvalidHubName",
        ),
        (
            RestError::HubNotDeclared { hub: "h".into() },
            404,
            "HubNotFound",
        ),
        (RestError::MissingApiVersion, 400, "MissingApiVersion"),
        (
            RestError::Unauthorized(Rejection {
                check: Check::Signature,
                message: "bad".into(),
                claims: None,
            }),
            401,
            "Unauthorized",
        ),
        (
            RestError::InvalidParameter {
                name: "group",
                message: "x".into(),
            },
            400,
            "InvalidParameter",
        ),
        (
            RestError::InvalidFilter {
                text: "a b".into(),
                error: FilterError {
                    position: 2,
                    message: "m".into(),
                },
                origin: FilterOrigin::Query,
            },
            400,
            "Error.BadRequest",
        ),
        (
            RestError::InvalidBody("b".into()),
            400,
            "InvalidRequestBody",
        ),
        (
            RestError::InvalidPayload(PayloadError::Empty),
            400,
            "InvalidPayload",
        ),
        (
            RestError::UnsupportedMediaType {
                content_type: "image/png".into(),
                accepted: SEND_MEDIA_TYPES,
            },
            415,
            "UnsupportedMediaType",
        ),
        (
            RestError::PayloadTooLarge { max: 10 },
            413,
            "PayloadTooLarge",
        ),
        (RestError::BodyRead("eof".into()), 400, "InvalidRequestBody"),
        (
            RestError::ConnectionNotFound {
                hub: "h".into(),
                connection_id: "c".into(),
            },
            404,
            "Error.Connection.NotExisted",
        ),
        (
            RestError::PermissionsNotSupported {
                permission: "sendToGroup".into(),
            },
            501,
            "NotImplemented",
        ),
    ];
    for (error, status, code) in cases {
        let explanation = error.to_string();
        let target = error.target().map(str::to_owned);
        let service = error.service_message();
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), status, "{error:?}");
        assert_eq!(response.headers()["x-ms-error-code"], code);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        let problem = matches!(error, RestError::InvalidFilter { .. });
        assert_eq!(
            content_type,
            if problem { PROBLEM_JSON } else { JSON },
            "{error:?}"
        );
        let json = body_json(response).await;
        assert_eq!(json["code"], code);
        assert_eq!(
            json["target"],
            target.map_or(serde_json::Value::Null, Into::into)
        );
        match (service, problem) {
            // sio-emu's own explanation is the message.
            (None, _) => {
                assert_eq!(json["message"], explanation.as_str());
                assert_eq!(json["details"], serde_json::Value::Null);
            }
            // The service's message; the explanation in `detail` or `details`.
            (Some(message), true) => {
                assert_eq!(json["message"], message.as_str());
                assert_eq!(json["detail"], explanation.as_str());
            }
            (Some(message), false) => {
                assert_eq!(json["message"], message.as_str());
                assert_eq!(json["details"][0]["message"], explanation.as_str());
            }
        }
        if !problem {
            assert_eq!(json["innererror"], serde_json::Value::Null, "{json}");
        }
    }
}

#[test]
fn unauthorized_names_the_check() {
    let error = RestError::Unauthorized(Rejection {
        check: Check::Aud,
        message: "aud is http://x, expected http://y".into(),
        claims: None,
    });
    assert!(error.to_string().contains("`aud` check"));
    let response = error.into_response();
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[test]
fn filter_error_carries_the_position() {
    let error = RestError::InvalidFilter {
        text: "groups in".into(),
        error: FilterError {
            position: 7,
            message: "expected `in`".into(),
        },
        origin: FilterOrigin::Body,
    };
    assert!(error.to_string().contains("position 7"), "{error}");
    assert_eq!(error.target(), Some("Filter"));
    // The service counts to the end of the token it stopped at (docs/protocol.md §7.5).
    assert_eq!(
        error.service_message().unwrap(),
        "Invalid syntax for 'groups in': Syntax error at position 9 in 'groups in'. \
         (Parameter 'filter')"
    );
}

#[test]
fn method_not_allowed_sets_allow() {
    let response = RestError::MethodNotAllowed {
        method: "GET".into(),
        path: "/p".into(),
        allowed: "PUT, DELETE".into(),
    }
    .into_response();
    assert_eq!(response.headers()[header::ALLOW], "PUT, DELETE");
}
