//! The world the REST operations act on, as a trait: [`Store`]. The operations in
//! [`super::operations`] and the pipeline in [`super`] are written once over it; `serve` runs
//! them over the live [`Service`] (implemented here) and `replay` over the hubs, connections,
//! users and groups of a recording (implemented beside its REST sink). So both answer every
//! call with the same code: the same checks, the same statuses, the same lint inputs.
//!
//! Every method names the hub as written in the path; a hub the store does not know behaves as
//! an empty hub. Methods are synchronous and short: the live store takes a hub lock inside each
//! one and never across an `await`.

use std::sync::Arc;

use http::HeaderMap;

use crate::hooks::RestObserver;
use crate::service::hub::{GroupMember, LeftGroups, Scope, Selection};
use crate::service::{ConnCommand, Service};
use crate::traffic::TrafficEvent;

use super::error::{Entity, RestError};
use super::request;
use super::send::{self, SendPayload};

/// What a send or a close reached: how many connections matched, and those whose queue refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reached {
    pub matched: usize,
    pub skipped: Vec<Arc<str>>,
}

/// The hubs a REST call acts on, and the few settings the operations read.
pub trait Store: Send + Sync {
    /// Whether `hub` has the connection, group or user `name`.
    fn exists(&self, hub: &str, entity: Entity, name: &str) -> bool;
    /// Every group `hub` has now (the lint learns them).
    fn groups(&self, hub: &str) -> Vec<String>;
    /// Delivers `payload` to the connections in `scope` that `keep` keeps.
    fn send(&self, hub: &str, scope: Scope<'_>, keep: &Selection, payload: &SendPayload)
    -> Reached;
    /// Tells the chosen connections to close with `reason`.
    fn close(&self, hub: &str, scope: Scope<'_>, selection: &Selection, reason: &str) -> Reached;
    /// Adds a connection to a group; false when there is no such connection.
    fn join(&self, hub: &str, connection_id: &str, group: &str) -> bool;
    /// Removes a connection from a group; false when it was not a member.
    fn leave(&self, hub: &str, connection_id: &str, group: &str) -> bool;
    /// Removes a connection from every group.
    fn leave_all_groups(&self, hub: &str, connection_id: &str) -> LeftGroups;
    /// Adds (removes) the connections `selection` keeps to (from) each of `groups`.
    fn set_groups(&self, hub: &str, selection: &Selection, groups: &[String], add: bool) -> usize;
    /// Assigns a user to a group; `None` when the hub may not be created (`--strict-hubs`).
    fn add_user_to_group(&self, hub: &str, user_id: &str, group: &str) -> Option<usize>;
    /// Removes a user from a group; `None` when the hub does not exist.
    fn remove_user_from_group(&self, hub: &str, user_id: &str, group: &str) -> Option<usize>;
    /// Removes a user from every group; `None` when the hub does not exist.
    fn remove_user_from_all_groups(&self, hub: &str, user_id: &str) -> Option<LeftGroups>;
    /// The members of a group, in connection-id order.
    fn group_members(&self, hub: &str, group: &str) -> Vec<GroupMember>;
    /// The public endpoint (`http://host:port`), for URLs and token audiences.
    fn endpoint(&self) -> &str;
    /// The key client tokens are signed with.
    fn signing_key(&self) -> String;
    /// Largest send body, in bytes.
    fn max_payload(&self) -> usize;
    /// Lets a call for `hub` through, or refuses it: the Bearer token (401) and `--strict-hubs`
    /// (404). `url` is the request URL as the caller used it.
    fn admit(&self, hub: &str, headers: &HeaderMap, url: &str) -> Result<(), RestError>;
    /// The contract lint's view of the calls.
    fn observer(&self) -> &dyn RestObserver;
    /// Shows a warning about a call.
    fn warn(&self, message: String, hint: Option<String>);
    /// Whether request bodies are kept for a recording.
    fn keeps_bodies(&self) -> bool;
}

impl Store for Service {
    fn exists(&self, hub: &str, entity: Entity, name: &str) -> bool {
        self.hub(hub).is_some_and(|hub| match entity {
            Entity::Group => hub.has_group(name),
            Entity::User => hub.has_user(name),
            Entity::Connection => hub.has_connection(name),
        })
    }

    fn groups(&self, hub: &str) -> Vec<String> {
        self.hub(hub).map(|h| h.known_groups()).unwrap_or_default()
    }

    fn send(
        &self,
        hub: &str,
        scope: Scope<'_>,
        keep: &Selection,
        payload: &SendPayload,
    ) -> Reached {
        let namespace = match payload {
            SendPayload::Disconnect { namespace, .. } => Some(namespace.as_str()),
            SendPayload::Packet { .. } => None,
        };
        let recipients = self
            .hub(hub)
            .map(|hub| hub.select(scope, keep, namespace))
            .unwrap_or_default();
        let report = send::deliver(payload, &recipients);
        Reached {
            matched: recipients.len(),
            skipped: report.skipped,
        }
    }

    fn close(&self, hub: &str, scope: Scope<'_>, selection: &Selection, reason: &str) -> Reached {
        let recipients = self
            .hub(hub)
            .map(|hub| hub.select(scope, selection, None))
            .unwrap_or_default();
        let skipped = recipients
            .iter()
            .filter(|(_, handle)| {
                !handle.send(ConnCommand::Close {
                    reason: reason.to_owned(),
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        Reached {
            matched: recipients.len(),
            skipped,
        }
    }

    fn join(&self, hub: &str, connection_id: &str, group: &str) -> bool {
        self.hub(hub)
            .is_some_and(|hub| hub.join(connection_id, group))
    }

    fn leave(&self, hub: &str, connection_id: &str, group: &str) -> bool {
        self.hub(hub)
            .is_some_and(|hub| hub.leave(connection_id, group))
    }

    fn leave_all_groups(&self, hub: &str, connection_id: &str) -> LeftGroups {
        self.hub(hub)
            .map(|hub| hub.leave_all_groups(&[Arc::from(connection_id)]))
            .unwrap_or_default()
    }

    fn set_groups(&self, hub: &str, selection: &Selection, groups: &[String], add: bool) -> usize {
        self.hub(hub)
            .map_or(0, |hub| hub.set_groups(selection, groups, add))
    }

    fn add_user_to_group(&self, hub: &str, user_id: &str, group: &str) -> Option<usize> {
        let hub = self.hub_or_create(hub)?;
        Some(hub.add_user_to_group(user_id, group))
    }

    fn remove_user_from_group(&self, hub: &str, user_id: &str, group: &str) -> Option<usize> {
        let hub = self.hub(hub)?;
        let matched = hub.remove_user_from_group(user_id, group);
        self.release_hub(&hub);
        Some(matched)
    }

    fn remove_user_from_all_groups(&self, hub: &str, user_id: &str) -> Option<LeftGroups> {
        let hub = self.hub(hub)?;
        let left = hub.remove_user_from_all_groups(user_id);
        self.release_hub(&hub);
        Some(left)
    }

    fn group_members(&self, hub: &str, group: &str) -> Vec<GroupMember> {
        self.hub(hub)
            .map(|hub| hub.group_members(group))
            .unwrap_or_default()
    }

    fn endpoint(&self) -> &str {
        Service::endpoint(self)
    }

    fn signing_key(&self) -> String {
        let config = self.config();
        config
            .access_keys
            .first()
            .map_or(crate::auth::DEV_ACCESS_KEY, String::as_str)
            .to_owned()
    }

    fn max_payload(&self) -> usize {
        self.config().engine.max_payload
    }

    fn admit(&self, hub: &str, headers: &HeaderMap, url: &str) -> Result<(), RestError> {
        let config = self.config();
        if !config.rest_anonymous {
            request::authorize(headers, &config.access_keys, url)?;
        }
        if config.strict_hubs && config.declared_hub(hub).is_none() {
            return Err(RestError::HubNotDeclared {
                hub: hub.to_owned(),
            });
        }
        Ok(())
    }

    fn observer(&self) -> &dyn RestObserver {
        self.hooks().rest.as_ref()
    }

    fn warn(&self, message: String, hint: Option<String>) {
        self.traffic().emit(TrafficEvent::Warning { message, hint });
    }

    fn keeps_bodies(&self) -> bool {
        self.traffic().recording()
    }
}
