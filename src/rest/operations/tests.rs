//! The operations over a small in-memory [`Store`]: what each one checks, asks of the store,
//! tells the lint and answers does not depend on which store runs it (the live service or a
//! replay's recorded world).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use http::HeaderValue;
use http_body_util::Full;

use super::*;
use crate::hooks::{LiveGroups, RestObserver};
use crate::rest::store::Reached;
use crate::service::hub::GroupMember;

/// Connections by id, each with its groups; what was sent; what the lint was told.
#[derive(Default)]
struct Memory {
    connections: Mutex<BTreeMap<String, BTreeSet<String>>>,
    sent: Mutex<Vec<String>>,
    seen: Mutex<Vec<String>>,
    /// `add_user_to_group` refuses (as `--strict-hubs` does for an undeclared hub).
    strict: bool,
}

impl Memory {
    fn with(connections: &[(&str, &[&str])]) -> Memory {
        let memory = Memory::default();
        for (id, groups) in connections {
            let groups = groups.iter().map(|g| g.to_string()).collect();
            memory.lock().insert(id.to_string(), groups);
        }
        memory
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.connections.lock().unwrap()
    }

    fn members(&self, group: &str) -> Vec<String> {
        let connections = self.lock();
        let inside = connections.iter().filter(|(_, g)| g.contains(group));
        inside.map(|(id, _)| id.clone()).collect()
    }
}

impl RestObserver for Memory {
    fn api_version(&self, operation: &str, version: &str, _: &[&str]) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{operation} {version}"));
    }

    fn disconnect_payload(&self, operation: &str, payload: &str) {
        let seen = format!("{operation} disconnect {payload}");
        self.seen.lock().unwrap().push(seen);
    }

    fn groups(&self, call: &GroupUse<'_>, live: LiveGroups<'_>) {
        self.seen.lock().unwrap().push(format!(
            "{} groups {:?} filter {:?} adds {} live {:?}",
            call.operation,
            call.groups,
            call.filter_groups,
            call.adds,
            live()
        ));
    }

    fn send(&self, hub: &str, operation: &str, namespace: &str, _: LiveGroups<'_>) {
        let seen = format!("{operation} to {hub} namespace {namespace}");
        self.seen.lock().unwrap().push(seen);
    }
}

impl Store for Memory {
    fn exists(&self, _: &str, entity: Entity, name: &str) -> bool {
        match entity {
            Entity::Connection => self.lock().contains_key(name),
            Entity::Group => !self.members(name).is_empty(),
            Entity::User => false,
        }
    }

    fn groups(&self, _: &str) -> Vec<String> {
        let connections = self.lock();
        let all: BTreeSet<&String> = connections.values().flatten().collect();
        all.into_iter().cloned().collect()
    }

    fn send(&self, _: &str, scope: Scope<'_>, _: &Selection, payload: &SendPayload) -> Reached {
        let matched = match scope {
            Scope::All => self.lock().len(),
            Scope::Group(group) => self.members(group).len(),
            Scope::Connection(id) => usize::from(self.lock().contains_key(id)),
            Scope::User(_) => 0,
        };
        if let SendPayload::Packet { text, .. } = payload {
            self.sent.lock().unwrap().push(text.to_string());
        }
        Reached {
            matched,
            skipped: Vec::new(),
        }
    }

    fn close(&self, _: &str, _: Scope<'_>, _: &Selection, _: &str) -> Reached {
        Reached::default()
    }

    fn join(&self, _: &str, connection_id: &str, group: &str) -> bool {
        let mut connections = self.lock();
        let Some(groups) = connections.get_mut(connection_id) else {
            return false;
        };
        groups.insert(group.to_owned());
        true
    }

    fn leave(&self, _: &str, connection_id: &str, group: &str) -> bool {
        let mut connections = self.lock();
        let left = connections.get_mut(connection_id);
        left.is_some_and(|groups| groups.remove(group))
    }

    fn leave_all_groups(&self, _: &str, _: &str) -> LeftGroups {
        LeftGroups::default()
    }

    fn set_groups(&self, _: &str, _: &Selection, _: &[String], _: bool) -> usize {
        0
    }

    fn add_user_to_group(&self, _: &str, _: &str, _: &str) -> Option<usize> {
        (!self.strict).then_some(0)
    }

    fn remove_user_from_group(&self, _: &str, _: &str, _: &str) -> Option<usize> {
        None
    }

    fn remove_user_from_all_groups(&self, _: &str, _: &str) -> Option<LeftGroups> {
        None
    }

    fn group_members(&self, _: &str, group: &str) -> Vec<GroupMember> {
        let members = self.members(group).into_iter();
        members
            .map(|id| GroupMember {
                connection_id: id.into(),
                user_id: None,
            })
            .collect()
    }

    fn endpoint(&self) -> &str {
        "http://localhost:5050"
    }

    fn signing_key(&self) -> String {
        "key".into()
    }

    fn max_payload(&self) -> usize {
        1000
    }

    fn admit(&self, _: &str, _: &HeaderMap, _: &str) -> Result<(), RestError> {
        Ok(())
    }

    fn observer(&self) -> &dyn RestObserver {
        self
    }

    fn warn(&self, _: String, _: Option<String>) {}

    fn keeps_bodies(&self) -> bool {
        false
    }
}

/// Runs `operation` over `store` with `query` and a text body, as the pipeline would.
async fn run(
    store: &Memory,
    operation: Operation,
    query: &str,
    body: &str,
) -> (Result<Reply, RestError>, Call) {
    let query = Query::parse(Some(query));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let ctx = Ctx {
        store,
        hub: "chat",
        query: &query,
        headers: &headers,
        url: "http://localhost:5050/api/hubs/chat/groups/g/connections",
    };
    let mut call = Call {
        operation: operation.name(),
        ..Call::default()
    };
    let body = Full::new(Bytes::from(body.to_owned()));
    let reply = execute(&ctx, operation, body, &mut call).await;
    (reply, call)
}

fn group(name: &str) -> Operation {
    Operation::GroupExists { group: name.into() }
}

#[tokio::test]
async fn each_success_is_the_one_its_contract_declares() {
    let store = Memory::with(&[("c1", &["g"])]);
    let cases = [
        (Operation::SendToAll, Reply::Accepted),
        (
            Operation::RemoveConnectionFromGroup {
                group: "g".into(),
                connection_id: "c1".into(),
            },
            Reply::NoContent,
        ),
        (
            Operation::AddUserToGroup {
                user_id: "u".into(),
                group: "g".into(),
            },
            Reply::Ok,
        ),
    ];
    for (operation, expected) in cases {
        let declared = operation.success();
        let (reply, _) = run(&store, operation, "", r#"42["hi"]"#).await;
        assert_eq!(reply.unwrap(), expected, "{declared:?}");
    }
    assert_eq!(store.sent.lock().unwrap().as_slice(), [r#"42["hi"]"#]);
    assert!(
        store.members("g").is_empty(),
        "the removal reached the store"
    );
}

#[tokio::test]
async fn existence_checks_answer_from_the_store() {
    let store = Memory::with(&[("c1", &["g"])]);
    let (found, _) = run(&store, group("g"), "", "").await;
    assert_eq!(found.unwrap(), Reply::Ok);
    let (missing, _) = run(&store, group("nope"), "", "").await;
    assert_eq!(
        missing.unwrap(),
        Reply::NotExisted(Entity::Group, "nope".into())
    );
}

#[tokio::test]
async fn a_join_needs_the_connection_and_names_are_checked_first() {
    let store = Memory::with(&[("c1", &[])]);
    let join = |id: &str| Operation::AddConnectionToGroup {
        group: "g".into(),
        connection_id: id.into(),
    };
    let (joined, call) = run(&store, join("c1"), "", "").await;
    assert_eq!(joined.unwrap(), Reply::Ok);
    assert_eq!(call.matched, Some(1));
    assert_eq!(store.members("g"), ["c1"]);

    let (unknown, _) = run(&store, join("c2"), "", "").await;
    assert!(matches!(
        unknown.unwrap_err(),
        RestError::ConnectionNotFound { connection_id, .. } if connection_id == "c2"
    ));

    let (empty, _) = run(&store, join(""), "", "").await;
    assert!(matches!(
        empty.unwrap_err(),
        RestError::InvalidParameter {
            name: "connectionId",
            ..
        }
    ));
}

#[tokio::test]
async fn a_store_that_may_not_create_the_hub_refuses_a_user_assignment() {
    let store = Memory {
        strict: true,
        ..Memory::default()
    };
    let assign = Operation::AddUserToGroup {
        user_id: "u".into(),
        group: "g".into(),
    };
    let (refused, _) = run(&store, assign, "", "").await;
    assert!(matches!(
        refused.unwrap_err(),
        RestError::HubNotDeclared { hub } if hub == "chat"
    ));
}

#[tokio::test]
async fn the_lint_sees_the_call_and_the_stores_groups() {
    let store = Memory::with(&[("c1", &["0~Lw~"])]);
    let send = Operation::SendToGroup {
        group: "0~Lw~".into(),
    };
    let (reply, call) = run(&store, send, "filter='other' in groups", r#"42["hi"]"#).await;
    assert_eq!(reply.unwrap(), Reply::Accepted);
    assert_eq!(call.matched, Some(1));
    assert_eq!(
        store.seen.lock().unwrap().as_slice(),
        [
            r#"SendToGroup groups ["0~Lw~"] filter ["other"] adds false live ["0~Lw~"]"#,
            "SendToGroup to chat namespace /",
        ]
    );
}

#[tokio::test]
async fn a_listing_pages_the_stores_members() {
    let store = Memory::with(&[("a", &["g"]), ("b", &["g"]), ("c", &["g"])]);
    let list = Operation::ListConnectionsInGroup { group: "g".into() };
    let (reply, call) = run(&store, list, "maxpagesize=2", "").await;
    let Reply::Json(body) = reply.unwrap() else {
        panic!("a listing answers JSON");
    };
    assert_eq!(call.matched, Some(2));
    assert_eq!(body["value"][1]["connectionId"], "b");
    let next = body["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("http://localhost:5050/api/hubs/chat/groups/g/connections?"),
        "{next}"
    );
}
