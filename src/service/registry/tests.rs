//! Unit tests of the hub registry: which hubs stay held (declared, in use) and which go, and
//! that refused names do not pile up.

use super::*;
use crate::service::ConnHandle;

fn none(_: &str) -> bool {
    false
}

#[test]
fn a_hub_nobody_holds_is_gone() {
    let mut registry = Registry::new([]);
    let hub = registry.get_or_insert("Chat", &none);
    assert!(registry.get("chat", &none).is_some(), "held by `hub`");
    drop(hub);
    assert!(registry.get("CHAT", &none).is_none());
    assert_eq!(registry.held(), 0, "the lookup dropped it");
}

#[test]
fn declared_hubs_stay() {
    let declared = |name: &str| name.eq_ignore_ascii_case("chat");
    let mut registry = Registry::new(["chat"]);
    assert!(registry.get("chat", &declared).is_some());
    assert_eq!(registry.live(&declared).len(), 1);
    let hub = registry.get("chat", &declared).unwrap();
    registry.release(&hub, &declared);
    assert!(registry.get("chat", &declared).is_some());
}

#[test]
fn connections_and_user_groups_keep_a_hub() {
    let mut registry = Registry::new([]);
    let hub = registry.get_or_insert("h", &none);
    hub.register(
        "c1".into(),
        None,
        &[],
        crate::engineio::Transport::WebSocket,
        ConnHandle::new(|_| true),
    );
    registry.release(&hub, &none);
    let other = registry.get_or_insert("h", &none);
    assert!(Arc::ptr_eq(&hub, &other), "not released while connected");
    drop(other);
    hub.unregister("c1");
    hub.add_user_to_group("u", "g");
    drop(hub);
    assert!(registry.get("h", &none).is_some(), "user groups persist");
    let hub = registry.get("h", &none).unwrap();
    hub.remove_user_from_all_groups("u");
    registry.release(&hub, &none);
    assert_eq!(registry.held(), 0);
}

#[test]
fn release_spares_a_hub_someone_else_holds() {
    let mut registry = Registry::new([]);
    let pending = registry.get_or_insert("h", &none);
    let closing = registry.get("h", &none).unwrap();
    registry.release(&closing, &none);
    drop(closing);
    let again = registry.get_or_insert("h", &none);
    assert!(
        Arc::ptr_eq(&pending, &again),
        "the pending holder's hub stays listed"
    );
}

#[test]
fn release_of_a_replaced_hub_spares_the_new_one() {
    let mut registry = Registry::new([]);
    let old = registry.get_or_insert("h", &none);
    let _twin = old.clone();
    registry.hubs.clear();
    let new = registry.get_or_insert("h", &none);
    let reader = new.clone();
    drop(new);
    registry.release(&old, &none);
    assert!(
        registry
            .get("h", &none)
            .is_some_and(|h| Arc::ptr_eq(&h, &reader))
    );
}

#[test]
fn refused_names_do_not_pile_up() {
    let mut registry = Registry::new(["kept"]);
    let declared = |name: &str| name == "kept";
    for i in 0..10_000 {
        drop(registry.get_or_insert(&format!("h{i}"), &declared));
    }
    assert!(registry.held() <= MIN_SWEEP + 1, "{}", registry.held());
    assert_eq!(registry.live(&declared).len(), 1);
}

#[test]
fn the_bound_follows_the_hubs_in_use() {
    let mut registry = Registry::new([]);
    let held: Vec<_> = (0..200)
        .map(|i| registry.get_or_insert(&format!("busy{i}"), &none))
        .collect();
    for i in 0..10_000 {
        drop(registry.get_or_insert(&format!("h{i}"), &none));
    }
    assert!(registry.held() <= 2 * held.len() + 1, "{}", registry.held());
    assert_eq!(registry.live(&none).len(), held.len());
}
