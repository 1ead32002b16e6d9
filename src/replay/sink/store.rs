//! The recorded world as a [`Store`]: the REST sink runs `serve`'s own operations over it, so a
//! replayed handler's calls get the checks, statuses and lint inputs `serve` would give them.
//!
//! A recording holds no live sockets: sends and closes reach nobody, removals remove nothing,
//! and group listings are empty. Existence checks answer from the hubs, connections, users and
//! groups the recording saw ([`World`]); groups a call adds are learned, so a later existence
//! check finds them. The Bearer token is not enforced here (the sink turns a bad one into a
//! warning), hubs are never strict, and the operations' live-log warnings have no live log to go
//! to, so they are dropped.

use http::HeaderMap;

use super::Shared;
use crate::hooks::{Inert, RestObserver};
use crate::rest::error::{Entity, RestError};
use crate::rest::send::SendPayload;
use crate::rest::store::{Reached, Store};
use crate::service::hub::{GroupMember, LeftGroups, Scope, Selection};

/// The sink's recorded world, locked for the length of one store call at a time.
pub(super) struct Recorded<'a> {
    pub(super) shared: &'a Shared,
}

impl Recorded<'_> {
    /// Remembers that `hub` has `groups`.
    fn learn<'g>(&self, hub: &str, groups: impl IntoIterator<Item = &'g str>) {
        let mut state = self.shared.lock();
        let known = state.world.hub_mut(hub);
        known.groups.extend(groups.into_iter().map(str::to_owned));
    }
}

impl Store for Recorded<'_> {
    fn exists(&self, hub: &str, entity: Entity, name: &str) -> bool {
        let state = self.shared.lock();
        state.world.hub(hub).is_some_and(|known| match entity {
            Entity::Connection => known.connections.contains(name),
            Entity::Group => known.groups.contains(name),
            Entity::User => known.users.contains(name),
        })
    }

    fn groups(&self, hub: &str) -> Vec<String> {
        let state = self.shared.lock();
        state
            .world
            .hub(hub)
            .map(|known| known.groups.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn send(&self, _: &str, _: Scope<'_>, _: &Selection, _: &SendPayload) -> Reached {
        Reached::default()
    }

    fn close(&self, _: &str, _: Scope<'_>, _: &Selection, _: &str) -> Reached {
        Reached::default()
    }

    fn join(&self, hub: &str, connection_id: &str, group: &str) -> bool {
        self.learn(hub, [group]);
        self.exists(hub, Entity::Connection, connection_id)
    }

    fn leave(&self, _: &str, _: &str, _: &str) -> bool {
        false
    }

    fn leave_all_groups(&self, _: &str, _: &str) -> LeftGroups {
        LeftGroups::default()
    }

    fn set_groups(&self, hub: &str, _: &Selection, groups: &[String], add: bool) -> usize {
        if add {
            self.learn(hub, groups.iter().map(String::as_str));
        }
        0
    }

    fn add_user_to_group(&self, hub: &str, _: &str, group: &str) -> Option<usize> {
        self.learn(hub, [group]);
        Some(0)
    }

    fn remove_user_from_group(&self, _: &str, _: &str, _: &str) -> Option<usize> {
        None
    }

    fn remove_user_from_all_groups(&self, _: &str, _: &str) -> Option<LeftGroups> {
        None
    }

    fn group_members(&self, _: &str, _: &str) -> Vec<GroupMember> {
        Vec::new()
    }

    fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    fn signing_key(&self) -> String {
        self.shared.access_key.clone()
    }

    fn max_payload(&self) -> usize {
        super::MAX_BODY
    }

    fn admit(&self, _: &str, _: &HeaderMap, _: &str) -> Result<(), RestError> {
        Ok(())
    }

    fn observer(&self) -> &dyn RestObserver {
        match &self.shared.lint {
            Some(collected) => collected.as_ref(),
            None => &Inert,
        }
    }

    fn warn(&self, _: String, _: Option<String>) {}

    fn keeps_bodies(&self) -> bool {
        false
    }
}
