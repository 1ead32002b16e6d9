//! One REST call to the data plane, the one type every layer shares: `rest` builds it when it
//! answers a call, the recording writes it as a `rest` line ([`super::record::RecordLine::Rest`]),
//! and `replay` reads it back, captures the handler's calls as it, compares and rewrites it.
//!
//! The operation is an [`OperationName`]: the docs/protocol.md §0 R1 operationIds as plain data, with no path
//! parameters. It lives here, at the bottom beside the traffic types, rather than in `rest`,
//! because `traffic` sits below every layer and `replay` sits beside `rest`: neither should import
//! the other's routing to name a call. `rest::Operation` (the routed operation with its decoded
//! parameters) names itself with [`OperationName`].
//!
//! Wire format: `method` is the HTTP method's text, `operation` the operationId text (`Unknown`
//! for a path that is no route), so recordings written before these types still read the same.

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`OperationName`] from one list: the enum, [`OperationName::ROUTED`] and the
/// operationId text of each name (`stringify!`), so the three cannot drift apart.
macro_rules! operation_names {
    ($($name:ident),* $(,)?) => {
        /// A REST operation by its docs/protocol.md §0 R1 operationId (`SendToAll`, …), or
        /// `Unknown` for a call that matched no route (and, when reading, for a name this version
        /// does not know).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum OperationName {
            $($name,)*
            /// Not a route (or a name from a newer recording).
            #[serde(other)]
            Unknown,
        }

        impl OperationName {
            /// Every name but `Unknown`.
            pub const ROUTED: &'static [OperationName] = &[$(OperationName::$name),*];

            /// The operationId text, as the wire format and the live log spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(OperationName::$name => stringify!($name),)*
                    OperationName::Unknown => "Unknown",
                }
            }
        }
    };
}

operation_names![
    SendToAll,
    SendToGroup,
    SendToConnection,
    SendToUser,
    AddConnectionsToGroups,
    RemoveConnectionsFromGroups,
    AddConnectionToGroup,
    RemoveConnectionFromGroup,
    RemoveConnectionFromAllGroups,
    CloseConnection,
    CloseAllConnections,
    CloseGroupConnections,
    CloseUserConnections,
    ConnectionExists,
    GroupExists,
    UserExists,
    AddUserToGroup,
    RemoveUserFromGroup,
    RemoveUserFromAllGroups,
    ListConnectionsInGroup,
    GenerateClientToken,
    GrantPermission,
    CheckPermission,
    RevokePermission,
];

impl OperationName {
    /// The operation named `name` (its operationId text); `Unknown` for any other text.
    pub fn from_name(name: &str) -> OperationName {
        Self::ROUTED
            .iter()
            .copied()
            .find(|op| op.as_str() == name)
            .unwrap_or(OperationName::Unknown)
    }
}

impl std::fmt::Display for OperationName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One REST call: what was asked and what was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestCall {
    #[serde(with = "method_text")]
    pub method: Method,
    pub operation: OperationName,
    /// The hub segment of the path (empty when the path is not a route).
    pub hub: String,
    pub path: String,
    /// Query parameters grouped by name, in the order they came.
    #[serde(default)]
    pub query: BTreeMap<String, Vec<String>>,
    /// The request body as text (lossy UTF-8; empty when not kept).
    #[serde(default)]
    pub body: String,
    /// The status answered.
    pub status: u16,
}

/// Query parameters grouped by name, as [`RestCall::query`] holds them.
pub fn query_map(query: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        map.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    map
}

/// `http::Method` as its text (`"POST"`); any token a request line could carry reads back.
pub mod method_text {
    use super::*;

    pub fn serialize<S: Serializer>(method: &Method, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(method.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Method::from_bytes(text.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an HTTP method")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"method":"POST","operation":"SendToAll","hub":"chat","path":"/api/hubs/chat/:send","query":{"api-version":["2024-01-01"]},"body":"42[\"x\"]","status":202}"#;

    #[test]
    fn the_wire_format_is_text() {
        let call: RestCall = serde_json::from_str(LINE).unwrap();
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.operation, OperationName::SendToAll);
        assert_eq!(serde_json::to_string(&call).unwrap(), LINE);
    }

    #[test]
    fn unknown_names_read_as_unknown_and_bad_methods_are_refused() {
        let future = LINE.replace("SendToAll", "SendToGalaxy");
        let call: RestCall = serde_json::from_str(&future).unwrap();
        assert_eq!(call.operation, OperationName::Unknown);
        let patch = LINE.replace("POST", "PATCH");
        assert_eq!(
            serde_json::from_str::<RestCall>(&patch).unwrap().method,
            Method::PATCH
        );
        let bad = LINE.replace("POST", "PO ST");
        let e = serde_json::from_str::<RestCall>(&bad).unwrap_err();
        assert!(e.to_string().contains("not an HTTP method"), "{e}");
    }

    #[test]
    fn names_serialize_as_their_text_and_read_back() {
        for op in OperationName::ROUTED
            .iter()
            .copied()
            .chain([OperationName::Unknown])
        {
            let text = serde_json::to_string(&op).unwrap();
            assert_eq!(text, format!("\"{}\"", op.as_str()));
            assert_eq!(serde_json::from_str::<OperationName>(&text).unwrap(), op);
            assert_eq!(OperationName::from_name(op.as_str()), op);
        }
        assert_eq!(
            OperationName::from_name("sendtoall"),
            OperationName::Unknown
        );
    }
}
