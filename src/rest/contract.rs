//! Each REST operation's contract, declared once (docs/protocol.md §7.2): the entities its path
//! names and how they are checked ([`Operation::names`], [`Operation::check_names`]), what it
//! answers when it succeeds ([`Operation::success`]) and what an existence check looks for
//! ([`Operation::looks_for`]). [`super::operations`] builds every answer from these, over the
//! live service and over a replay's recorded world alike, so no other module writes an
//! operation's status.

use super::Operation;
use super::error::{Entity, RestError};
use super::request::{check_group, check_id};

/// What an operation answers when it succeeds; each carries `api-supported-versions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// 202, empty: sends.
    Accepted,
    /// 200: adds, found existence checks, listings and tokens.
    Ok,
    /// 204, empty: removes and closes.
    NoContent,
}

impl Operation {
    /// The answer when the operation succeeds.
    pub fn success(&self) -> Success {
        use Operation as Op;
        match self {
            Op::SendToAll
            | Op::SendToGroup { .. }
            | Op::SendToConnection { .. }
            | Op::SendToUser { .. } => Success::Accepted,
            Op::RemoveConnectionFromGroup { .. }
            | Op::RemoveConnectionFromAllGroups { .. }
            | Op::RemoveUserFromGroup { .. }
            | Op::RemoveUserFromAllGroups { .. }
            | Op::CloseConnection { .. }
            | Op::CloseAllConnections
            | Op::CloseGroupConnections { .. }
            | Op::CloseUserConnections { .. } => Success::NoContent,
            Op::AddConnectionsToGroups
            | Op::RemoveConnectionsFromGroups
            | Op::AddConnectionToGroup { .. }
            | Op::AddUserToGroup { .. }
            | Op::ConnectionExists { .. }
            | Op::GroupExists { .. }
            | Op::UserExists { .. }
            | Op::ListConnectionsInGroup { .. }
            | Op::GenerateClientToken
            | Op::GrantPermission { .. }
            | Op::CheckPermission { .. }
            | Op::RevokePermission { .. } => Success::Ok,
        }
    }

    /// The connections, groups and users the path names, in path order. The permission
    /// operations name none: they are refused whatever they name.
    pub fn names(&self) -> Vec<(Entity, &str)> {
        use Entity::{Connection, Group, User};
        use Operation as Op;
        match self {
            Op::SendToAll
            | Op::AddConnectionsToGroups
            | Op::RemoveConnectionsFromGroups
            | Op::CloseAllConnections
            | Op::GenerateClientToken
            | Op::GrantPermission { .. }
            | Op::CheckPermission { .. }
            | Op::RevokePermission { .. } => Vec::new(),
            Op::SendToGroup { group }
            | Op::CloseGroupConnections { group }
            | Op::GroupExists { group }
            | Op::ListConnectionsInGroup { group } => vec![(Group, group)],
            Op::SendToConnection { connection_id }
            | Op::RemoveConnectionFromAllGroups { connection_id }
            | Op::CloseConnection { connection_id }
            | Op::ConnectionExists { connection_id } => vec![(Connection, connection_id)],
            Op::SendToUser { user_id }
            | Op::CloseUserConnections { user_id }
            | Op::UserExists { user_id }
            | Op::RemoveUserFromAllGroups { user_id } => vec![(User, user_id)],
            Op::AddConnectionToGroup {
                group,
                connection_id,
            }
            | Op::RemoveConnectionFromGroup {
                group,
                connection_id,
            } => vec![(Group, group), (Connection, connection_id)],
            Op::AddUserToGroup { user_id, group } | Op::RemoveUserFromGroup { user_id, group } => {
                vec![(User, user_id), (Group, group)]
            }
        }
    }

    /// Checks every name the path holds (400 `InvalidParameter` for the first bad one).
    pub fn check_names(&self) -> Result<(), RestError> {
        for (entity, name) in self.names() {
            match entity {
                Entity::Group => check_group("group", name)?,
                Entity::User => check_id("userId", name)?,
                Entity::Connection => check_id("connectionId", name)?,
            }
        }
        Ok(())
    }

    /// What an existence check looks for; `None` for every other operation.
    pub fn looks_for(&self) -> Option<(Entity, &str)> {
        match self {
            Operation::ConnectionExists { .. }
            | Operation::GroupExists { .. }
            | Operation::UserExists { .. } => self.names().into_iter().next(),
            _ => None,
        }
    }
}
