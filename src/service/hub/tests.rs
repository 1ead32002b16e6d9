//! Unit tests of hub membership: the invariants checked on the state directly.

use super::*;

fn handle() -> ConnHandle {
    ConnHandle::new(|_| true)
}

/// Registers WebSocket connection `id` of `user` with the groups of its token.
fn connect(hub: &Hub, id: &str, user: Option<&str>, token_groups: &[String]) {
    let transport = crate::engineio::Transport::WebSocket;
    hub.register(
        id.into(),
        user.map(Arc::from),
        token_groups,
        transport,
        handle(),
    );
}

#[test]
fn groups_follow_sockets_and_users() {
    let hub = Hub::new("chat");
    hub.state()
        .user_groups
        .entry("alice".into())
        .or_default()
        .insert("vip".into());
    connect(&hub, "c1", Some("alice"), &["g".into()]);
    let sid: Arc<str> = "s1".into();
    hub.socket_joined("c1", "/ns", &sid);
    {
        let state = hub.state();
        let entry = &state.connections["c1"];
        assert!(entry.in_group("vip"));
        assert!(entry.in_group("g"));
        assert!(entry.in_group("0~L25z~"));
        assert!(entry.in_group(&group::room_group("/ns", "s1")));
        assert_eq!(state.groups["0~L25z~"].len(), 1);
    }
    hub.socket_left("c1", "/ns");
    {
        let state = hub.state();
        assert!(!state.connections["c1"].in_group("0~L25z~"));
        assert!(!state.groups.contains_key("0~L25z~"));
        assert!(state.connections["c1"].in_group("g"));
    }
    hub.unregister("c1");
    assert!(hub.state().groups.is_empty());
    assert!(!hub.is_empty(), "user groups outlive connections");
}

/// The hub's invariants, checked on the state itself.
fn check_invariants(hub: &Hub) {
    let state = hub.state();
    for (name, members) in &state.groups {
        assert!(!members.is_empty(), "group {name} is empty but kept");
        for id in members {
            let entry = state.connections.get(id).expect("a member is live");
            assert!(entry.groups.contains(name), "{id} in {name} one way only");
        }
    }
    for entry in state.connections.values() {
        for name in &entry.groups {
            assert!(
                state
                    .groups
                    .get(name)
                    .is_some_and(|m| m.contains(&entry.connection_id)),
                "{} lists {name} but is not its member",
                entry.connection_id
            );
        }
        let assigned = entry
            .user_id
            .as_deref()
            .and_then(|u| state.user_groups.get(u));
        for name in assigned.into_iter().flatten() {
            assert!(entry.groups.contains(name), "user group {name} not applied");
        }
    }
    for (user, groups) in &state.user_groups {
        assert!(!groups.is_empty(), "user {user} keeps an empty assignment");
    }
}

fn ids(recipients: &[(Arc<str>, ConnHandle)]) -> Vec<String> {
    let mut ids: Vec<String> = recipients.iter().map(|(id, _)| id.to_string()).collect();
    ids.sort();
    ids
}

fn hub_with(connections: &[(&str, Option<&str>)]) -> Hub {
    let hub = Hub::new("h");
    for (id, user) in connections {
        connect(&hub, id, *user, &[]);
    }
    hub
}

#[test]
fn user_assignment_reaches_current_and_future_connections() {
    let hub = hub_with(&[("c1", Some("alice")), ("c2", Some("bob"))]);
    assert_eq!(hub.add_user_to_group("alice", "vip"), 1);
    check_invariants(&hub);
    connect(&hub, "c3", Some("alice"), &[]);
    check_invariants(&hub);
    let all = Selection::default();
    assert_eq!(
        ids(&hub.select(Scope::Group("vip"), &all, None)),
        ["c1", "c3"]
    );
    assert_eq!(hub.user_groups("alice"), ["vip"]);
    assert_eq!(hub.connection_groups("c2"), Some(vec![]));
}

#[test]
fn removing_a_user_group_withdraws_it_everywhere() {
    let hub = hub_with(&[("c1", Some("alice")), ("c2", Some("alice"))]);
    hub.add_user_to_group("alice", "vip");
    hub.add_user_to_group("alice", "gold");
    assert_eq!(hub.remove_user_from_group("alice", "vip"), 2);
    check_invariants(&hub);
    assert!(!hub.has_group("vip"), "a group with no members is dropped");
    assert_eq!(hub.user_groups("alice"), ["gold"]);
    hub.remove_user_from_group("alice", "gold");
    assert!(hub.user_groups("alice").is_empty());
    assert!(hub.known_groups().is_empty(), "no empty assignment is kept");
    connect(&hub, "c3", Some("alice"), &[]);
    assert_eq!(hub.connection_groups("c3"), Some(vec![]));
    check_invariants(&hub);
}

#[test]
fn removing_a_user_from_all_groups_clears_assignments_and_memberships() {
    let hub = hub_with(&[("c1", Some("alice")), ("c2", None)]);
    hub.add_user_to_group("alice", "vip");
    assert!(hub.join("c1", "plain") && hub.join("c2", "plain"));
    let left = hub.remove_user_from_all_groups("alice");
    assert_eq!(left.existing, 1);
    check_invariants(&hub);
    assert_eq!(hub.connection_groups("c1"), Some(vec![]));
    assert!(hub.user_groups("alice").is_empty());
    assert!(!hub.has_group("vip"));
    assert!(hub.has_group("plain"), "other members keep the group");
}

#[test]
fn leaving_every_group_removes_the_connection_from_each() {
    let hub = hub_with(&[("c1", None), ("c2", None)]);
    let sid: Arc<str> = "s1".into();
    hub.socket_joined("c1", "/", &sid);
    for g in ["a", "b"] {
        hub.join("c1", g);
    }
    hub.join("c2", "a");
    let left = hub.leave_all_groups(&["c1".into(), "nobody".into()]);
    assert_eq!(left.existing, 1, "only live connections count");
    assert_eq!(left.implicit_dropped, vec![Arc::<str>::from("c1")]);
    check_invariants(&hub);
    assert_eq!(hub.connection_groups("c1"), Some(vec![]));
    assert!(!hub.has_group("b") && !hub.has_group(&group::namespace_group("/")));
    assert!(hub.has_group("a"));
    let without_sockets = hub.leave_all_groups(&["c2".into()]);
    assert!(without_sockets.implicit_dropped.is_empty());
}

#[test]
fn unregistering_leaves_every_group() {
    let hub = hub_with(&[("c1", Some("u")), ("c2", None)]);
    hub.join("c1", "a");
    hub.join("c2", "a");
    hub.join("c1", "b");
    hub.unregister("c1");
    check_invariants(&hub);
    assert!(!hub.has_connection("c1") && !hub.has_user("u"));
    assert!(!hub.has_group("b"));
    assert_eq!(hub.group_members("a").len(), 1);
}

#[test]
fn join_and_leave_answer_for_unknown_connections_and_non_members() {
    let hub = hub_with(&[("c1", None)]);
    assert!(!hub.join("nobody", "g"));
    assert!(
        !hub.has_group("g"),
        "no group is created for a missing connection"
    );
    assert!(!hub.leave("c1", "g"));
    assert!(hub.join("c1", "g") && hub.join("c1", "g"));
    assert!(hub.leave("c1", "g"));
    assert!(!hub.has_group("g"));
    check_invariants(&hub);
}

#[test]
fn selection_reaches_exactly_the_chosen_connections() {
    let hub = hub_with(&[("c1", Some("u")), ("c2", Some("u")), ("c3", None)]);
    hub.join("c1", "g");
    hub.join("c3", "g");
    let sid: Arc<str> = "s".into();
    hub.socket_joined("c3", "/ns", &sid);
    let all = Selection::default();
    assert_eq!(
        ids(&hub.select(Scope::Group("g"), &all, None)),
        ["c1", "c3"]
    );
    assert_eq!(ids(&hub.select(Scope::User("u"), &all, None)), ["c1", "c2"]);
    assert_eq!(
        ids(&hub.select(Scope::Connection("c2"), &all, None)),
        ["c2"]
    );
    assert!(hub.select(Scope::Group("none"), &all, None).is_empty());
    assert_eq!(ids(&hub.select(Scope::All, &all, Some("/ns"))), ["c3"]);
    let narrowed = Selection {
        excluded: vec!["c1".into()],
        filter: Filter::parse("userId eq 'u'").expect("a valid filter"),
    };
    assert_eq!(ids(&hub.select(Scope::All, &narrowed, None)), ["c2"]);
}

#[test]
fn groups_by_filter_add_and_remove_the_selected_connections() {
    let hub = hub_with(&[("c1", Some("u")), ("c2", None)]);
    let users = Selection {
        excluded: Vec::new(),
        filter: Filter::parse("userId ne null").expect("a valid filter"),
    };
    let groups = ["a".to_owned(), "b".to_owned()];
    assert_eq!(hub.set_groups(&users, &groups, true), 1);
    check_invariants(&hub);
    assert_eq!(hub.connection_groups("c1"), Some(groups.to_vec()));
    assert_eq!(hub.connection_groups("c2"), Some(vec![]));
    assert_eq!(hub.set_groups(&Selection::default(), &groups, false), 2);
    check_invariants(&hub);
    assert!(!hub.has_group("a") && !hub.has_group("b"));
}

#[test]
fn members_snapshot_and_reset() {
    let hub = hub_with(&[("c2", None), ("c1", Some("u"))]);
    hub.join("c1", "g");
    hub.join("c2", "g");
    hub.add_user_to_group("v", "later");
    let members = hub.group_members("g");
    let names: Vec<&str> = members.iter().map(|m| &*m.connection_id).collect();
    assert_eq!(names, ["c1", "c2"]);
    assert_eq!(members[0].user_id.as_deref(), Some("u"));
    let snapshot = hub.snapshot();
    assert_eq!(snapshot.connections[0].connection_id.as_ref(), "c1");
    assert_eq!(
        snapshot.user_groups,
        vec![("v".into(), vec!["later".into()])]
    );
    let reset = hub.reset();
    assert_eq!((reset.groups_cleared, reset.user_groups_cleared), (1, 1));
    assert_eq!(reset.handles.len(), 2);
    check_invariants(&hub);
    assert!(hub.known_groups().is_empty() && hub.has_connection("c1"));
}
