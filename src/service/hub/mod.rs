//! One hub's state: its connections (with their user ids and a handle to reach them), its
//! groups (connection-level sets, docs/protocol.md §7–§8) and the user → group assignments that follow a
//! user onto every connection it opens. The REST API and the Socket.IO layer change it only
//! through these methods, under one lock per hub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::engineio::Transport;

use super::group;
use super::odata::{Filter, FilterTarget};

mod membership;

pub use membership::{
    GroupMember, HubSnapshot, LeftGroups, Reset, Scope, Selection, SnapshotConnection,
};

/// A command for one connection's session, sent by the REST API.
#[derive(Debug, Clone)]
pub enum ConnCommand {
    /// Deliver one complete Engine.IO text packet verbatim (docs/protocol.md §14 decision 12).
    Send(Arc<str>),
    /// A DISCONNECT for `namespace`: the socket leaves; `close` also ends the connection.
    DisconnectSocket { namespace: String, close: bool },
    /// Close the whole connection with this `disconnected` reason.
    Close { reason: String },
}

/// Reaches one connection's session; returns false when its queue is full or it has ended.
#[derive(Clone)]
pub struct ConnHandle(Arc<dyn Fn(ConnCommand) -> bool + Send + Sync>);

impl ConnHandle {
    /// Wraps the session's sender.
    pub fn new(f: impl Fn(ConnCommand) -> bool + Send + Sync + 'static) -> Self {
        ConnHandle(Arc::new(f))
    }

    /// Queues a command without waiting.
    pub fn send(&self, command: ConnCommand) -> bool {
        (self.0)(command)
    }
}

impl std::fmt::Debug for ConnHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnHandle")
    }
}

/// One live connection as the hub sees it.
#[derive(Debug)]
struct ConnEntry {
    connection_id: Arc<str>,
    user_id: Option<Arc<str>>,
    groups: HashSet<String>,
    /// Accepted Socket.IO sockets: (namespace, socket id).
    sockets: Vec<(String, Arc<str>)>,
    handle: ConnHandle,
    transport: Transport,
    opened: SystemTime,
}

impl ConnEntry {
    fn has_socket_in(&self, namespace: &str) -> bool {
        self.sockets.iter().any(|(ns, _)| ns == namespace)
    }

    /// Whether the connection is in one of its sockets' implicit groups (docs/protocol.md §14 decision 9).
    fn in_implicit_group(&self) -> bool {
        self.sockets.iter().any(|(ns, sid)| {
            self.groups.contains(&group::namespace_group(ns))
                || self.groups.contains(&group::room_group(ns, sid))
        })
    }
}

impl FilterTarget for ConnEntry {
    fn connection_id(&self) -> &str {
        &self.connection_id
    }
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }
    fn groups(&self) -> Vec<&str> {
        self.groups.iter().map(String::as_str).collect()
    }
}

/// Shrinks a table that is more than four times larger than it needs (and past a small size),
/// so a burst of connections that left does not pin its memory.
fn release_spare<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    let live = map.len().max(64);
    if map.capacity() > 4 * live {
        map.shrink_to(live * 2);
    }
}

/// Everything a hub holds. Invariants: `groups[g]` holds exactly the connections whose entry
/// lists `g`; no group is empty; no user's assignment set is empty.
#[derive(Debug, Default)]
struct HubState {
    connections: HashMap<Arc<str>, ConnEntry>,
    groups: HashMap<String, HashSet<Arc<str>>>,
    user_groups: HashMap<String, HashSet<String>>,
}

impl HubState {
    /// Adds a connection to a group; false when there is no such connection.
    fn join(&mut self, connection_id: &str, group: &str) -> bool {
        let Some(entry) = self.connections.get_mut(connection_id) else {
            return false;
        };
        if entry.groups.insert(group.to_owned()) {
            self.groups
                .entry(group.to_owned())
                .or_default()
                .insert(entry.connection_id.clone());
        }
        true
    }

    /// Removes a connection from a group; false when it was not a member.
    fn leave(&mut self, connection_id: &str, group: &str) -> bool {
        let Some(entry) = self.connections.get_mut(connection_id) else {
            return false;
        };
        if !entry.groups.remove(group) {
            return false;
        }
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(connection_id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
        true
    }

    /// Removes a connection from every group.
    fn leave_all(&mut self, connection_id: &str) {
        let groups: Vec<String> = self
            .connections
            .get(connection_id)
            .map(|e| e.groups.iter().cloned().collect())
            .unwrap_or_default();
        for g in groups {
            self.leave(connection_id, &g);
        }
    }

    /// Connections of a user.
    fn user_connections(&self, user_id: &str) -> Vec<Arc<str>> {
        self.connections
            .values()
            .filter(|e| e.user_id.as_deref() == Some(user_id))
            .map(|e| e.connection_id.clone())
            .collect()
    }
}

/// A hub: its display name and its state.
#[derive(Debug)]
pub struct Hub {
    name: String,
    state: Mutex<HubState>,
}

impl Hub {
    /// An empty hub.
    pub fn new(name: &str) -> Self {
        Hub {
            name: name.to_owned(),
            state: Mutex::new(HubState::default()),
        }
    }

    /// The hub's name as first used (or declared).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locks the state. Poisoning cannot leave it inconsistent (no panics while held).
    fn state(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, joining the groups of its token and of its user.
    pub fn register(
        &self,
        connection_id: Arc<str>,
        user_id: Option<Arc<str>>,
        token_groups: &[String],
        transport: Transport,
        handle: ConnHandle,
    ) {
        let mut state = self.state();
        let mut initial: Vec<String> = token_groups.to_vec();
        if let Some(user) = &user_id
            && let Some(groups) = state.user_groups.get(user.as_ref())
        {
            initial.extend(groups.iter().cloned());
        }
        state.connections.insert(
            connection_id.clone(),
            ConnEntry {
                connection_id: connection_id.clone(),
                user_id,
                groups: HashSet::new(),
                sockets: Vec::new(),
                handle,
                transport,
                opened: SystemTime::now(),
            },
        );
        for g in initial {
            state.join(&connection_id, &g);
        }
    }

    /// A connection moved to WebSocket.
    pub fn upgraded(&self, connection_id: &str) {
        if let Some(entry) = self.state().connections.get_mut(connection_id) {
            entry.transport = Transport::WebSocket;
        }
    }

    /// Forgets a connection and its memberships.
    pub fn unregister(&self, connection_id: &str) {
        let mut state = self.state();
        state.leave_all(connection_id);
        state.connections.remove(connection_id);
        // After a storm of disconnects the tables would keep their peak size for good.
        release_spare(&mut state.connections);
        release_spare(&mut state.groups);
    }

    /// A socket was accepted: record it and join its implicit groups (docs/protocol.md §14 decision 9).
    pub fn socket_joined(&self, connection_id: &str, namespace: &str, socket_id: &Arc<str>) {
        let mut state = self.state();
        if let Some(entry) = state.connections.get_mut(connection_id) {
            // Most connections join one namespace: no room for four (kept while it is idle).
            entry.sockets.reserve_exact(1);
            entry
                .sockets
                .push((namespace.to_owned(), socket_id.clone()));
        }
        state.join(connection_id, &group::namespace_group(namespace));
        state.join(connection_id, &group::room_group(namespace, socket_id));
    }

    /// A socket left: forget it and leave every group of its namespace (docs/protocol.md §4 step 5).
    pub fn socket_left(&self, connection_id: &str, namespace: &str) {
        let mut state = self.state();
        let Some(entry) = state.connections.get_mut(connection_id) else {
            return;
        };
        entry.sockets.retain(|(ns, _)| ns != namespace);
        let doomed: Vec<String> = entry
            .groups
            .iter()
            .filter(|g| group::parse(g).is_some_and(|sg| sg.namespace == namespace))
            .cloned()
            .collect();
        for g in doomed {
            state.leave(connection_id, &g);
        }
    }

    /// Whether the hub keeps nothing: no connections and no user → group assignments (groups
    /// only hold connections, so they are empty too).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        let state = self.state();
        state.connections.is_empty() && state.user_groups.is_empty()
    }

    /// Whether the hub keeps nothing (no connections, no user → group assignments), without
    /// waiting: a hub whose state is locked is in use.
    pub fn is_idle(&self) -> bool {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        state.connections.is_empty() && state.user_groups.is_empty()
    }
}

#[cfg(test)]
mod tests;
