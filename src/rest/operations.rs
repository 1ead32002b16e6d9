//! The REST operations themselves (docs/protocol.md §7.2): each one only translates. It checks
//! the names its path holds and its query and body, does its work through one method of a
//! [`Store`] (the live service, whose hubs keep the invariants under the hub lock, or a replay's
//! recorded world), tells the store's lint observer what it relies on, and answers as its
//! contract ([`super::contract`]) declares.
//!
//! Neighbours: [`super`] routes a request to an [`Operation`] and handles auth; [`super::send`]
//! validates payloads and delivers them. Nothing here holds a hub lock: the only awaits are body
//! reads.
//!
//! Decisions where the spec is silent:
//! - A hub nobody has used yet behaves as an empty hub: sends match nothing (202), existence
//!   checks answer 404, removals succeed (204). Only AddUserToGroup creates it, because the
//!   assignment must outlive the call; removing the last assignment releases it again.
//! - RemoveConnectionFromAllGroups / RemoveUserFromAllGroups remove every group, the implicit
//!   Socket.IO groups `0~ns~` and `0~ns~sid` included, as the cloud's "all groups" says; a
//!   warning explains that the sockets then miss namespace and own-room messages.
//! - A DISCONNECT (`41…`) goes only to matched connections that have a socket in its namespace,
//!   so `{"close":true}` never closes a connection that has no socket there.
//! - Closing or removing an unknown connection succeeds (204), as deletes do in the cloud; only
//!   AddConnectionToGroup answers 404 for one (docs/protocol.md §0 A3).
//! - GenerateClientToken accepts `clientType` absent, `Default` or `SocketIO` (any case): docs/protocol.md §0 R1
//!   lists only `Default` for Socket.IO, but `@azure/web-pubsub`'s `getClientAccessToken({
//!   clientProtocol: "socketio" })` sends `clientType=socketio` when it authenticates with Entra.
//!   `MQTT` and anything else is a 400.
//! - `excluded` and `filter` are honoured wherever a set of connections is chosen (all, a group,
//!   a user); closes take `excluded` only, as in docs/protocol.md §0 R1.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::auth::{self, TokenClaims};
use crate::hooks::GroupUse;
use crate::http::{HttpResponse, ResponseBody};
use crate::service::group;
use crate::service::hub::{LeftGroups, Scope, Selection};
use crate::service::odata::Filter;
use crate::traffic::preview;

use super::contract::Success;
use super::error::{self, Entity, FilterOrigin, RestError};
use super::paging::Paging;
use super::request::{self, Query, RequestBody, check_group};
use super::send::{self, SendPayload};
use super::store::{Reached, Store};
use super::{Call, Operation, describe_group};

/// Largest JSON body of `:addToGroups` / `:removeFromGroups`, in bytes.
pub const MAX_GROUPS_BODY: usize = 1024 * 1024;

/// Most groups one `:addToGroups` / `:removeFromGroups` call may name.
pub const MAX_GROUPS_PER_CALL: usize = 1024;

/// Default lifetime of a `:generateToken` token, in minutes (docs/protocol.md §0 R1).
pub const DEFAULT_TOKEN_MINUTES: u64 = 60;

/// Characters of a payload shown in the live log.
const LOG_PREVIEW: usize = 120;

/// Connection ids named in one warning about skipped recipients.
const MAX_IDS_IN_WARNING: usize = 5;

/// What one call needs besides its operation and body.
pub struct Ctx<'a> {
    /// The live service or a replay's recorded world.
    pub store: &'a dyn Store,
    /// The hub as written in the path (matched case-insensitively).
    pub hub: &'a str,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    /// The request URL as the caller used it (`http://<Host><path>?<query>`), for `nextLink`.
    pub url: &'a str,
}

impl Ctx<'_> {
    fn warn(&self, message: String, hint: Option<String>) {
        self.store.warn(message, hint);
    }
}

/// A successful answer; each carries `api-supported-versions` (docs/protocol.md §7.5).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 202, empty: sends.
    Accepted,
    /// 200, empty: adds, and existence checks that found what they looked for.
    Ok,
    /// 204: removes and closes.
    NoContent,
    /// 404 `Warning.<Entity>.NotExisted`: an existence check that found nothing.
    NotExisted(Entity, String),
    /// 200 with a JSON body.
    Json(serde_json::Value),
}

impl Reply {
    /// The HTTP response.
    pub fn into_response(self) -> HttpResponse {
        let (status, body) = match self {
            Reply::Accepted => (StatusCode::ACCEPTED, Bytes::new()),
            Reply::Ok => (StatusCode::OK, Bytes::new()),
            Reply::NotExisted(entity, name) => return error::not_existed(entity, &name),
            Reply::NoContent => (StatusCode::NO_CONTENT, Bytes::new()),
            Reply::Json(value) => (StatusCode::OK, Bytes::from(value.to_string())),
        };
        let json = !body.is_empty();
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        if json {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
        }
        error::add_supported_versions(&mut response);
        response
    }
}

/// Appends `excluded` and `filter` to a call's target description.
fn describe_selection(selection: &Selection, target: &mut String) {
    if !selection.excluded.is_empty() {
        target.push_str(&format!(" except [{}]", selection.excluded.join(", ")));
    }
    if !selection.filter.is_match_all() {
        target.push_str(&format!(" where {}", selection.filter));
    }
}

/// What an operation's work produced; [`reply`] makes it the operation's declared answer.
enum Outcome {
    /// Done: the operation's [`Operation::success`] answer.
    Done,
    /// An existence check: found, or the service's 404 warning.
    Found(bool),
    /// A 200 with this JSON body.
    Json(serde_json::Value),
}

/// Runs one operation: checks the names its path holds, does its work over the store and
/// answers as its contract declares.
pub async fn execute<B: RequestBody>(
    ctx: &Ctx<'_>,
    operation: Operation,
    body: B,
    call: &mut Call,
) -> Result<Reply, RestError> {
    operation.check_names()?;
    let outcome = perform(ctx, &operation, body, call).await?;
    Ok(reply(&operation, outcome))
}

/// The declared answer of an operation that succeeded.
fn reply(operation: &Operation, outcome: Outcome) -> Reply {
    match (outcome, operation.looks_for()) {
        (Outcome::Json(value), _) => Reply::Json(value),
        (Outcome::Found(false), Some((entity, name))) => Reply::NotExisted(entity, name.to_owned()),
        (Outcome::Done | Outcome::Found(_), _) => match operation.success() {
            Success::Accepted => Reply::Accepted,
            Success::Ok => Reply::Ok,
            Success::NoContent => Reply::NoContent,
        },
    }
}

/// The work of each operation, its names already checked.
async fn perform<B: RequestBody>(
    ctx: &Ctx<'_>,
    operation: &Operation,
    body: B,
    call: &mut Call,
) -> Result<Outcome, RestError> {
    use Operation as Op;
    let (store, hub) = (ctx.store, ctx.hub);
    match operation {
        Op::SendToAll => send_to(ctx, Scope::All, body, call).await?,
        Op::SendToGroup { group } => send_to(ctx, Scope::Group(group), body, call).await?,
        Op::SendToConnection { connection_id } => {
            send_to(ctx, Scope::Connection(connection_id), body, call).await?;
        }
        Op::SendToUser { user_id } => send_to(ctx, Scope::User(user_id), body, call).await?,
        Op::AddConnectionsToGroups => groups_by_filter(ctx, true, body, call).await?,
        Op::RemoveConnectionsFromGroups => groups_by_filter(ctx, false, body, call).await?,
        Op::AddConnectionToGroup {
            group,
            connection_id,
        } => add_connection_to_group(ctx, group, connection_id, call)?,
        Op::RemoveConnectionFromGroup {
            group,
            connection_id,
        } => call.matched = Some(usize::from(store.leave(hub, connection_id, group))),
        Op::RemoveConnectionFromAllGroups { connection_id } => {
            let left = store.leave_all_groups(hub, connection_id);
            left_all_groups(ctx, Some(left), call);
        }
        Op::CloseConnection { connection_id } => close(ctx, Scope::Connection(connection_id), call),
        Op::CloseAllConnections => close(ctx, Scope::All, call),
        Op::CloseGroupConnections { group } => close(ctx, Scope::Group(group), call),
        Op::CloseUserConnections { user_id } => close(ctx, Scope::User(user_id), call),
        Op::ConnectionExists { .. } | Op::GroupExists { .. } | Op::UserExists { .. } => {
            let found = operation
                .looks_for()
                .is_some_and(|(entity, name)| store.exists(hub, entity, name));
            return Ok(Outcome::Found(found));
        }
        Op::AddUserToGroup { user_id, group } => add_user_to_group(ctx, user_id, group, call)?,
        // Releases the hub when that was its last assignment.
        Op::RemoveUserFromGroup { user_id, group } => {
            call.matched = store.remove_user_from_group(hub, user_id, group);
        }
        Op::RemoveUserFromAllGroups { user_id } => {
            let left = store.remove_user_from_all_groups(hub, user_id);
            left_all_groups(ctx, left, call);
        }
        Op::ListConnectionsInGroup { group } => return list_group(ctx, group, call),
        Op::GenerateClientToken => return generate_token(ctx),
        Op::GrantPermission { permission, .. }
        | Op::CheckPermission { permission, .. }
        | Op::RevokePermission { permission, .. } => {
            return Err(RestError::PermissionsNotSupported {
                permission: permission.clone(),
            });
        }
    }
    Ok(Outcome::Done)
}

/// RemoveConnectionFromAllGroups / RemoveUserFromAllGroups: what left (`None`: the hub does not
/// exist) becomes the call's count, and a warning if implicit groups went too.
fn left_all_groups(ctx: &Ctx<'_>, left: Option<LeftGroups>, call: &mut Call) {
    if let Some(left) = left {
        warn_implicit_dropped(ctx, &left);
        call.matched = Some(left.existing);
    }
}

/// SendToAll / SendToGroup / SendToConnection / SendToUser.
async fn send_to<B: RequestBody>(
    ctx: &Ctx<'_>,
    scope: Scope<'_>,
    body: B,
    call: &mut Call,
) -> Result<(), RestError> {
    let selection = match scope {
        Scope::Connection(_) => Selection::default(),
        _ => Selection {
            excluded: ctx.query.excluded(),
            filter: ctx.query.filter()?,
        },
    };
    describe_selection(&selection, &mut call.target);
    // Validated only: delivery to a local client is immediate, so a TTL never expires.
    ctx.query.message_ttl()?;
    let payload = read_payload(ctx, body, call).await?;
    lint_send(ctx, scope, &selection, &payload, call);
    let reached = ctx.store.send(ctx.hub, scope, &selection, &payload);
    let why_empty = (reached.matched == 0)
        .then(|| why_nothing_matched(ctx, scope, &selection.filter))
        .flatten();
    call.matched = Some(reached.matched);
    call.note = Some(send_note(&payload, why_empty));
    warn_undelivered(ctx, &reached.skipped, reached.matched, &call.target);
    Ok(())
}

/// Reads and parses a send body, keeping it for the call log.
async fn read_payload<B: RequestBody>(
    ctx: &Ctx<'_>,
    body: B,
    call: &mut Call,
) -> Result<SendPayload, RestError> {
    let kind = request::send_media_type(ctx.headers)?;
    let bytes = request::read_body(ctx.headers, body, ctx.store.max_payload()).await?;
    call.keep_body(ctx.store, &bytes);
    let payload = send::parse_payload(&bytes, kind).inspect_err(|e| {
        if let send::PayloadError::DisconnectPayload { payload } = e {
            let rest = ctx.store.observer();
            rest.disconnect_payload(call.operation, payload);
        }
    })?;
    Ok(payload)
}

/// The contract lints of a send: groups that never existed, the packet's namespace.
fn lint_send(
    ctx: &Ctx<'_>,
    scope: Scope<'_>,
    selection: &Selection,
    payload: &SendPayload,
    call: &Call,
) {
    let target_group: Vec<&str> = match scope {
        Scope::Group(name) => vec![name],
        _ => Vec::new(),
    };
    let rest = ctx.store.observer();
    let live = || ctx.store.groups(ctx.hub);
    let call_groups = GroupUse {
        hub: ctx.hub,
        operation: call.operation,
        groups: &target_group,
        filter_groups: &selection.filter.group_literals(),
        adds: false,
    };
    rest.groups(&call_groups, &live);
    rest.send(ctx.hub, call.operation, payload.namespace(), &live);
    if let Scope::Group(name) = scope {
        lint_namespace(ctx, name, payload);
    }
}

/// The live-log note of a send: the payload's preview, and why nothing matched if so.
fn send_note(payload: &SendPayload, why_empty: Option<String>) -> String {
    let mut note = match payload {
        SendPayload::Packet { text, .. } => preview(text, LOG_PREVIEW),
        SendPayload::Disconnect { namespace, close } => {
            format!("DISCONNECT {namespace} (close: {close})")
        }
    };
    if let Some(why) = why_empty {
        note.push_str("; nothing matched: ");
        note.push_str(&why);
    }
    note
}

/// Warns about recipients whose queue refused a message.
fn warn_undelivered(ctx: &Ctx<'_>, skipped: &[Arc<str>], recipients: usize, target: &str) {
    if skipped.is_empty() {
        return;
    }
    ctx.warn(
        format!(
            "{} of {recipients} recipient(s) of {target} did not get the message: their queue \
             is full or they just closed ({})",
            skipped.len(),
            name_some(skipped)
        ),
        Some(
            "a client that does not read its socket falls behind; the message was dropped for \
             it only"
                .into(),
        ),
    );
}

/// Explains an empty match by the groups it named that no connection is in: the target group
/// itself, else the groups the filter names (which may sit under a `not`, hence "names").
fn why_nothing_matched(ctx: &Ctx<'_>, scope: Scope<'_>, filter: &Filter) -> Option<String> {
    let exists = |name: &str| ctx.store.exists(ctx.hub, Entity::Group, name);
    if let Scope::Group(g) = scope
        && !exists(g)
    {
        return Some(format!("no connection is in group `{g}`"));
    }
    let mut missing: Vec<&str> = Vec::new();
    for name in filter.group_literals() {
        if !exists(name) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the filter names group(s) no connection is in: `{}`",
            missing.join("`, `")
        )
    })
}

/// Warns when a packet's namespace differs from the Socket.IO group it is sent to: the clients
/// would ignore it.
fn lint_namespace(ctx: &Ctx<'_>, name: &str, payload: &SendPayload) {
    if let Some(sio) = group::parse(name)
        && sio.namespace != payload.namespace()
    {
        ctx.warn(
            format!(
                "a REST send to {} carries a packet for namespace {}; the group's sockets are \
                 in {} and will ignore it",
                describe_group(name),
                payload.namespace(),
                sio.namespace
            ),
            Some(format!(
                "write the namespace in the packet: `42{},[\"event\",...]`",
                sio.namespace
            )),
        );
    }
}

/// The JSON body of `:addToGroups` / `:removeFromGroups` (docs/protocol.md §0 R1 `GroupsToAdd` / `GroupsToRemove`).
#[derive(Debug, Deserialize)]
struct GroupsBody {
    groups: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<String>,
}

/// AddConnectionsToGroups / RemoveConnectionsFromGroups.
async fn groups_by_filter<B: RequestBody>(
    ctx: &Ctx<'_>,
    add: bool,
    body: B,
    call: &mut Call,
) -> Result<(), RestError> {
    request::json_media_type(ctx.headers)?;
    let bytes = request::read_body(ctx.headers, body, MAX_GROUPS_BODY).await?;
    call.keep_body(ctx.store, &bytes);
    let body: GroupsBody = serde_json::from_slice(&bytes).map_err(|e| {
        RestError::InvalidBody(format!(
            "the body must be JSON like {{\"groups\":[\"0~L2NoYXQ~cm9vbQ\"],\"filter\":\"'0~L2NoYXQ~c2lk' in groups\"}}: {e}"
        ))
    })?;
    let groups = body.groups.ok_or_else(|| {
        RestError::InvalidBody(
            "the body has no `groups` array; send {\"groups\":[...],\"filter\":\"...\"}".into(),
        )
    })?;
    if groups.len() > MAX_GROUPS_PER_CALL {
        return Err(RestError::InvalidBody(format!(
            "the body names {} groups; at most {MAX_GROUPS_PER_CALL} are accepted per call",
            groups.len()
        )));
    }
    for g in &groups {
        check_group("groups", g)?;
    }
    let filter = request::parse_filter(body.filter.as_deref().unwrap_or(""), FilterOrigin::Body)?;
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let call_groups = GroupUse {
        hub: ctx.hub,
        operation: call.operation,
        groups: &names,
        filter_groups: &filter.group_literals(),
        adds: add,
    };
    ctx.store
        .observer()
        .groups(&call_groups, &|| ctx.store.groups(ctx.hub));
    let described: Vec<String> = groups.iter().map(|g| describe_group(g)).collect();
    call.target = format!("[{}]", described.join(", "));
    if !filter.is_match_all() {
        call.target.push_str(&format!(" where {filter}"));
    }
    let selection = Selection {
        excluded: Vec::new(),
        filter,
    };
    call.matched = Some(ctx.store.set_groups(ctx.hub, &selection, &groups, add));
    Ok(())
}

/// AddConnectionToGroup: 404 when the connection does not exist (docs/protocol.md §0 A3).
fn add_connection_to_group(
    ctx: &Ctx<'_>,
    group: &str,
    connection_id: &str,
    call: &mut Call,
) -> Result<(), RestError> {
    if !ctx.store.join(ctx.hub, connection_id, group) {
        return Err(RestError::ConnectionNotFound {
            hub: ctx.hub.to_owned(),
            connection_id: connection_id.to_owned(),
        });
    }
    call.matched = Some(1);
    Ok(())
}

/// AddUserToGroup: remembered for the user's future connections, applied to current ones.
fn add_user_to_group(
    ctx: &Ctx<'_>,
    user_id: &str,
    group: &str,
    call: &mut Call,
) -> Result<(), RestError> {
    let matched = ctx
        .store
        .add_user_to_group(ctx.hub, user_id, group)
        .ok_or_else(|| RestError::HubNotDeclared {
            hub: ctx.hub.to_owned(),
        })?;
    call.matched = Some(matched);
    Ok(())
}

/// Warns when removing every group took sockets out of their implicit Socket.IO groups.
fn warn_implicit_dropped(ctx: &Ctx<'_>, left: &LeftGroups) {
    if left.implicit_dropped.is_empty() {
        return;
    }
    ctx.warn(
        format!(
            "removing all groups also took connection(s) {} out of their sockets' implicit \
             Socket.IO groups (0~<namespace>~ and 0~<namespace>~<socket id>)",
            name_some(&left.implicit_dropped)
        ),
        Some(
            "those sockets no longer receive namespace broadcasts or messages sent to their \
             own room; remove single rooms with :removeFromGroups instead"
                .into(),
        ),
    );
}

/// CloseConnection / CloseAllConnections / CloseGroupConnections / CloseUserConnections.
fn close(ctx: &Ctx<'_>, scope: Scope<'_>, call: &mut Call) {
    let excluded = match scope {
        Scope::Connection(_) => Vec::new(),
        _ => ctx.query.excluded(),
    };
    let selection = Selection {
        excluded,
        filter: Filter::default(),
    };
    describe_selection(&selection, &mut call.target);
    let reason = ctx.query.close_reason();
    let Reached { matched, skipped } = ctx.store.close(ctx.hub, scope, &selection, &reason);
    call.matched = Some(matched);
    call.note = Some(format!("reason: {reason}"));
    if !skipped.is_empty() {
        ctx.warn(
            format!(
                "{} connection(s) could not be told to close: their queue is full or they just \
                 closed ({})",
                skipped.len(),
                name_some(&skipped)
            ),
            None,
        );
    }
}

/// One member of a group, as the 2024-12-01 ListConnectionsInGroup returns it: `userId` is
/// `null` for an anonymous connection.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupMember<'a> {
    connection_id: &'a str,
    user_id: Option<&'a str>,
}

/// ListConnectionsInGroup (2024-12-01): one page of members in connection-id order, with a
/// `nextLink` while more remain (docs/protocol.md §7.6).
fn list_group(ctx: &Ctx<'_>, group: &str, call: &mut Call) -> Result<Outcome, RestError> {
    let paging = Paging::from_query(ctx.query)?;
    let members = ctx.store.group_members(ctx.hub, group);
    let page = paging.page(members.iter().map(|m| m.connection_id.as_ref()));
    let value: Vec<GroupMember<'_>> = members[page.range]
        .iter()
        .map(|m| GroupMember {
            connection_id: &m.connection_id,
            user_id: m.user_id.as_deref(),
        })
        .collect();
    call.matched = Some(value.len());
    let mut body = serde_json::json!({ "value": value });
    if let Some(next) = &page.next {
        let base = ctx.url.split_once('?').map_or(ctx.url, |(base, _)| base);
        let link = format!("{base}?{}", paging.next_query(ctx.query, next));
        body["nextLink"] = serde_json::Value::String(link);
    }
    Ok(Outcome::Json(body))
}

/// GenerateClientToken: a Socket.IO client token for this hub, signed with the primary key.
fn generate_token(ctx: &Ctx<'_>) -> Result<Outcome, RestError> {
    let query = ctx.query;
    if let Some(client_type) = query.get("clientType")
        && !client_type.is_empty()
        && !client_type.eq_ignore_ascii_case("default")
        && !client_type.eq_ignore_ascii_case("socketio")
    {
        return Err(RestError::InvalidParameter {
            name: "clientType",
            message: format!(
                "clientType `{client_type}` is not available for Socket.IO hubs; omit it or pass \
                 `Default`"
            ),
        });
    }
    let minutes = match query.get("minutesToExpire") {
        None => DEFAULT_TOKEN_MINUTES,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(m) if (1..=request::MAX_TOKEN_MINUTES).contains(&m) => m,
            _ => {
                return Err(RestError::InvalidParameter {
                    name: "minutesToExpire",
                    message: format!(
                        "minutesToExpire must be an integer from 1 to {}; got `{raw}`",
                        request::MAX_TOKEN_MINUTES
                    ),
                });
            }
        },
    };
    let groups: Vec<String> = query
        .all("group")
        .map(|g| check_group("group", g).map(|()| g.to_owned()))
        .collect::<Result<_, _>>()?;
    let roles: Vec<String> = query
        .all("role")
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let claims = TokenClaims {
        aud: auth::client_audience(ctx.store.endpoint(), ctx.hub),
        sub: query
            .get("userId")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        roles,
        groups,
        lifetime_secs: minutes.saturating_mul(60),
        now: auth::now_unix(),
    };
    let token = auth::mint(&ctx.store.signing_key(), &claims);
    Ok(Outcome::Json(serde_json::json!({ "token": token })))
}

/// Up to [`MAX_IDS_IN_WARNING`] ids, then "and N more".
fn name_some(ids: &[Arc<str>]) -> String {
    let shown: Vec<&str> = ids
        .iter()
        .take(MAX_IDS_IN_WARNING)
        .map(AsRef::as_ref)
        .collect();
    let mut text = shown.join(", ");
    if ids.len() > MAX_IDS_IN_WARNING {
        text.push_str(&format!(" and {} more", ids.len() - MAX_IDS_IN_WARNING));
    }
    text
}

#[cfg(test)]
mod tests;
