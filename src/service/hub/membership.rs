//! Hub, group, user and connection membership as operations on a [`Hub`], each under one lock
//! and each keeping the hub's invariants: a group holds exactly the connections that list it and
//! is dropped when it has no members; a user's group assignment applies to the user's current
//! connections and to those it opens later; removing a connection from every group leaves no
//! trace of it in any group. The REST API and the admin surface only call these; they never see
//! the state itself.
//!
//! Selections ([`Scope`] narrowed by [`Selection`]) return the recipients' handles, so that the
//! caller queues commands after the lock is released.

use std::sync::Arc;
use std::time::SystemTime;

use crate::engineio::Transport;

use super::{ConnEntry, ConnHandle, Filter, Hub, HubState};

/// Which connections an operation starts from, before `excluded` and `filter`.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Group(&'a str),
    User(&'a str),
    Connection(&'a str),
}

/// `excluded` and `filter`, applied to every connection in scope.
#[derive(Debug, Default)]
pub struct Selection {
    pub excluded: Vec<String>,
    pub filter: Filter,
}

impl Selection {
    fn keeps(&self, entry: &ConnEntry) -> bool {
        !self.excluded.iter().any(|x| **x == *entry.connection_id) && self.filter.matches(entry)
    }
}

/// What removing connections from every group did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LeftGroups {
    /// How many of the named connections existed.
    pub existing: usize,
    /// Those that were in one of their sockets' implicit Socket.IO groups.
    pub implicit_dropped: Vec<Arc<str>>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub connection_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
}

/// One connection in a [`HubSnapshot`]: groups sorted, sockets in join order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConnection {
    pub connection_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
    pub groups: Vec<String>,
    /// (namespace, socket id).
    pub sockets: Vec<(String, Arc<str>)>,
    pub transport: Transport,
    pub opened: SystemTime,
}

/// A sorted copy of a hub's state, for views that must not hold the lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubSnapshot {
    /// Sorted by connection id.
    pub connections: Vec<SnapshotConnection>,
    /// User → sorted groups, sorted by user.
    pub user_groups: Vec<(String, Vec<String>)>,
}

/// What [`Hub::reset`] cleared, and the handles of the connections to close.
#[derive(Debug, Default)]
pub struct Reset {
    pub handles: Vec<ConnHandle>,
    pub groups_cleared: usize,
    pub user_groups_cleared: usize,
}

impl HubState {
    /// The connections in `scope` that `selection` keeps and, when `namespace` is given, that
    /// have a socket in it.
    fn select(
        &self,
        scope: Scope<'_>,
        selection: &Selection,
        namespace: Option<&str>,
    ) -> Vec<&ConnEntry> {
        let keep = |entry: &&ConnEntry| {
            selection.keeps(entry) && namespace.is_none_or(|ns| entry.has_socket_in(ns))
        };
        let in_scope: Vec<&ConnEntry> = match scope {
            Scope::All => self.connections.values().collect(),
            Scope::Group(g) => self
                .groups
                .get(g)
                .into_iter()
                .flatten()
                .filter_map(|id| self.connections.get(id))
                .collect(),
            Scope::User(u) => self
                .connections
                .values()
                .filter(|e| e.user_id.as_deref() == Some(u))
                .collect(),
            Scope::Connection(c) => self.connections.get(c).into_iter().collect(),
        };
        in_scope.into_iter().filter(keep).collect()
    }

    /// Removes connections from every group.
    fn leave_all_of(&mut self, connection_ids: &[Arc<str>]) -> LeftGroups {
        let mut left = LeftGroups::default();
        for id in connection_ids {
            let Some(entry) = self.connections.get(id.as_ref()) else {
                continue;
            };
            left.existing += 1;
            if entry.in_implicit_group() {
                left.implicit_dropped.push(id.clone());
            }
            self.leave_all(id);
        }
        left
    }
}

impl Hub {
    /// Handles of the selected connections (see [`Scope`], [`Selection`]); a `namespace` keeps
    /// only connections with a socket in it.
    pub fn select(
        &self,
        scope: Scope<'_>,
        selection: &Selection,
        namespace: Option<&str>,
    ) -> Vec<(Arc<str>, ConnHandle)> {
        let state = self.state();
        state
            .select(scope, selection, namespace)
            .into_iter()
            .map(|e| (e.connection_id.clone(), e.handle.clone()))
            .collect()
    }

    /// Adds a connection to a group; false when there is no such connection.
    pub fn join(&self, connection_id: &str, group: &str) -> bool {
        self.state().join(connection_id, group)
    }

    /// Removes a connection from a group; false when it was not a member.
    pub fn leave(&self, connection_id: &str, group: &str) -> bool {
        self.state().leave(connection_id, group)
    }

    /// Adds (or removes) every connection `selection` keeps to (from) each of `groups`;
    /// returns how many connections were selected.
    pub fn set_groups(&self, selection: &Selection, groups: &[String], add: bool) -> usize {
        let mut state = self.state();
        let ids: Vec<Arc<str>> = state
            .select(Scope::All, selection, None)
            .into_iter()
            .map(|e| e.connection_id.clone())
            .collect();
        for id in &ids {
            for g in groups {
                if add {
                    state.join(id, g);
                } else {
                    state.leave(id, g);
                }
            }
        }
        ids.len()
    }

    /// Removes connections from every group, the implicit Socket.IO groups included.
    pub fn leave_all_groups(&self, connection_ids: &[Arc<str>]) -> LeftGroups {
        self.state().leave_all_of(connection_ids)
    }

    /// Assigns `group` to a user: its current connections join now, future ones on register.
    /// Returns how many connections the user has.
    pub fn add_user_to_group(&self, user_id: &str, group: &str) -> usize {
        let mut state = self.state();
        state
            .user_groups
            .entry(user_id.to_owned())
            .or_default()
            .insert(group.to_owned());
        let connections = state.user_connections(user_id);
        for c in &connections {
            state.join(c, group);
        }
        connections.len()
    }

    /// Withdraws `group` from a user and its current connections. Returns how many
    /// connections the user has.
    pub fn remove_user_from_group(&self, user_id: &str, group: &str) -> usize {
        let mut state = self.state();
        if let Some(groups) = state.user_groups.get_mut(user_id) {
            groups.remove(group);
            if groups.is_empty() {
                state.user_groups.remove(user_id);
            }
        }
        let connections = state.user_connections(user_id);
        for c in &connections {
            state.leave(c, group);
        }
        connections.len()
    }

    /// Withdraws every assignment of a user and takes its connections out of every group.
    pub fn remove_user_from_all_groups(&self, user_id: &str) -> LeftGroups {
        let mut state = self.state();
        state.user_groups.remove(user_id);
        let connections = state.user_connections(user_id);
        state.leave_all_of(&connections)
    }

    /// Whether the connection is live in this hub.
    pub fn has_connection(&self, connection_id: &str) -> bool {
        self.state().connections.contains_key(connection_id)
    }

    /// Whether the group has a member.
    pub fn has_group(&self, group: &str) -> bool {
        self.state()
            .groups
            .get(group)
            .is_some_and(|members| !members.is_empty())
    }

    /// Whether the user has a live connection.
    pub fn has_user(&self, user_id: &str) -> bool {
        self.state()
            .connections
            .values()
            .any(|e| e.user_id.as_deref() == Some(user_id))
    }

    /// The groups of a connection, sorted; `None` when it is not live.
    #[cfg(test)]
    pub fn connection_groups(&self, connection_id: &str) -> Option<Vec<String>> {
        let state = self.state();
        let entry = state.connections.get(connection_id)?;
        let mut groups: Vec<String> = entry.groups.iter().cloned().collect();
        groups.sort();
        Some(groups)
    }

    /// The groups assigned to a user, sorted (empty when none).
    #[cfg(test)]
    pub fn user_groups(&self, user_id: &str) -> Vec<String> {
        let state = self.state();
        let mut groups: Vec<String> = state
            .user_groups
            .get(user_id)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        groups.sort();
        groups
    }

    /// The members of a group, sorted by connection id.
    pub fn group_members(&self, group: &str) -> Vec<GroupMember> {
        let state = self.state();
        let mut members: Vec<GroupMember> = state
            .select(Scope::Group(group), &Selection::default(), None)
            .into_iter()
            .map(|e| GroupMember {
                connection_id: e.connection_id.clone(),
                user_id: e.user_id.clone(),
            })
            .collect();
        members.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        members
    }

    /// Every group name the hub knows: groups with members and user assignments.
    pub fn known_groups(&self) -> Vec<String> {
        let state = self.state();
        let mut names: Vec<String> = state.groups.keys().cloned().collect();
        names.extend(state.user_groups.values().flatten().cloned());
        names
    }

    /// A sorted copy of the state.
    pub fn snapshot(&self) -> HubSnapshot {
        let state = self.state();
        let mut connections: Vec<SnapshotConnection> = state
            .connections
            .values()
            .map(|e| {
                let mut groups: Vec<String> = e.groups.iter().cloned().collect();
                groups.sort();
                SnapshotConnection {
                    connection_id: e.connection_id.clone(),
                    user_id: e.user_id.clone(),
                    groups,
                    sockets: e.sockets.clone(),
                    transport: e.transport,
                    opened: e.opened,
                }
            })
            .collect();
        connections.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        let mut user_groups: Vec<(String, Vec<String>)> = state
            .user_groups
            .iter()
            .map(|(user, groups)| {
                let mut groups: Vec<String> = groups.iter().cloned().collect();
                groups.sort();
                (user.clone(), groups)
            })
            .collect();
        user_groups.sort();
        HubSnapshot {
            connections,
            user_groups,
        }
    }

    /// Empties every group and user assignment; returns the connections' handles so the
    /// caller can close them after the lock is released.
    pub fn reset(&self) -> Reset {
        let mut state = self.state();
        let reset = Reset {
            groups_cleared: state.groups.len(),
            user_groups_cleared: state.user_groups.values().map(|g| g.len()).sum(),
            handles: Vec::new(),
        };
        state.groups.clear();
        state.user_groups.clear();
        let handles = state
            .connections
            .values_mut()
            .map(|e| {
                e.groups.clear();
                e.handle.clone()
            })
            .collect();
        Reset { handles, ..reset }
    }
}
