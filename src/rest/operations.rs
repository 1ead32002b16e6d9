//! The REST operations themselves (docs/protocol.md §7.2): each one only translates. It validates its
//! parameters, calls one membership method of the hub ([`crate::service::hub`], which keeps the
//! invariants under the hub lock) and builds the reply; sends and closes get the recipients'
//! handles from [`Hub::select`] and queue the commands after the lock is released.
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
use hyper::body::Body;
use serde::{Deserialize, Serialize};

use crate::auth::{self, TokenClaims};
use crate::hooks::GroupUse;
use crate::http::{HttpResponse, ResponseBody};
use crate::service::hub::{LeftGroups, Scope, Selection};
use crate::service::odata::Filter;
use crate::service::{ConnCommand, Hub, Service, group};
use crate::traffic::{TrafficEvent, preview};

use super::error::{self, Entity, FilterOrigin, RestError};
use super::paging::Paging;
use super::request::{self, Query, check_group, check_id};
use super::send::{self, SendPayload};
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
#[derive(Debug)]
pub struct Ctx<'a> {
    pub service: &'a Service,
    /// The hub as written in the path (matched case-insensitively).
    pub hub: &'a str,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    /// The request URL as the caller used it (`http://<Host><path>?<query>`), for `nextLink`.
    pub url: &'a str,
}

impl Ctx<'_> {
    fn hub(&self) -> Option<Arc<Hub>> {
        self.service.hub(self.hub)
    }

    fn warn(&self, message: String, hint: Option<String>) {
        self.service
            .traffic()
            .emit(TrafficEvent::Warning { message, hint });
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

/// Runs one operation.
pub async fn execute<B>(
    ctx: &Ctx<'_>,
    operation: Operation,
    body: B,
    call: &mut Call,
) -> Result<Reply, RestError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match operation {
        Operation::SendToAll => send_to(ctx, Scope::All, body, call).await,
        Operation::SendToGroup { group } => send_to(ctx, Scope::Group(&group), body, call).await,
        Operation::SendToConnection { connection_id } => {
            send_to(ctx, Scope::Connection(&connection_id), body, call).await
        }
        Operation::SendToUser { user_id } => send_to(ctx, Scope::User(&user_id), body, call).await,
        Operation::AddConnectionsToGroups => groups_by_filter(ctx, true, body, call).await,
        Operation::RemoveConnectionsFromGroups => groups_by_filter(ctx, false, body, call).await,
        Operation::AddConnectionToGroup {
            group,
            connection_id,
        } => add_connection_to_group(ctx, &group, &connection_id, call),
        Operation::RemoveConnectionFromGroup {
            group,
            connection_id,
        } => remove_connection_from_group(ctx, &group, &connection_id, call),
        Operation::RemoveConnectionFromAllGroups { connection_id } => {
            remove_connection_from_all_groups(ctx, &connection_id, call)
        }
        Operation::CloseConnection { connection_id } => {
            close(ctx, Scope::Connection(&connection_id), call)
        }
        Operation::CloseAllConnections => close(ctx, Scope::All, call),
        Operation::CloseGroupConnections { group } => close(ctx, Scope::Group(&group), call),
        Operation::CloseUserConnections { user_id } => close(ctx, Scope::User(&user_id), call),
        Operation::ConnectionExists { connection_id } => {
            exists(ctx, Scope::Connection(&connection_id))
        }
        Operation::GroupExists { group } => exists(ctx, Scope::Group(&group)),
        Operation::UserExists { user_id } => exists(ctx, Scope::User(&user_id)),
        Operation::AddUserToGroup { user_id, group } => {
            add_user_to_group(ctx, &user_id, &group, call)
        }
        Operation::RemoveUserFromGroup { user_id, group } => {
            remove_user_from_group(ctx, &user_id, &group, call)
        }
        Operation::RemoveUserFromAllGroups { user_id } => {
            remove_user_from_all_groups(ctx, &user_id, call)
        }
        Operation::ListConnectionsInGroup { group } => list_group(ctx, &group, call),
        Operation::GenerateClientToken => generate_token(ctx),
        Operation::GrantPermission { permission, .. }
        | Operation::CheckPermission { permission, .. }
        | Operation::RevokePermission { permission, .. } => {
            Err(RestError::PermissionsNotSupported { permission })
        }
    }
}

/// Checks the path parameter a scope names.
fn check_scope(scope: Scope<'_>) -> Result<(), RestError> {
    match scope {
        Scope::All => Ok(()),
        Scope::Group(group) => check_group("group", group),
        Scope::User(user_id) => check_id("userId", user_id),
        Scope::Connection(connection_id) => check_id("connectionId", connection_id),
    }
}

/// ConnectionExists / GroupExists / UserExists: 200, or the service's 404 warning.
fn exists(ctx: &Ctx<'_>, scope: Scope<'_>) -> Result<Reply, RestError> {
    check_scope(scope)?;
    let (entity, name) = match scope {
        Scope::All => return Ok(Reply::Ok),
        Scope::Group(group) => (Entity::Group, group),
        Scope::User(user_id) => (Entity::User, user_id),
        Scope::Connection(connection_id) => (Entity::Connection, connection_id),
    };
    let exists = ctx.hub().is_some_and(|hub| match entity {
        Entity::Group => hub.has_group(name),
        Entity::User => hub.has_user(name),
        Entity::Connection => hub.has_connection(name),
    });
    Ok(if exists {
        Reply::Ok
    } else {
        Reply::NotExisted(entity, name.to_owned())
    })
}

/// RemoveConnectionFromGroup.
fn remove_connection_from_group(
    ctx: &Ctx<'_>,
    group: &str,
    connection_id: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_group("group", group)?;
    check_id("connectionId", connection_id)?;
    let left = ctx.hub().is_some_and(|hub| hub.leave(connection_id, group));
    call.matched = Some(usize::from(left));
    Ok(Reply::NoContent)
}

/// RemoveConnectionFromAllGroups.
fn remove_connection_from_all_groups(
    ctx: &Ctx<'_>,
    connection_id: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_id("connectionId", connection_id)?;
    let left = match ctx.hub() {
        Some(hub) => hub.leave_all_groups(&[Arc::from(connection_id)]),
        None => LeftGroups::default(),
    };
    warn_implicit_dropped(ctx, &left);
    call.matched = Some(left.existing);
    Ok(Reply::NoContent)
}

/// RemoveUserFromGroup; releases the hub when that was its last assignment.
fn remove_user_from_group(
    ctx: &Ctx<'_>,
    user_id: &str,
    group: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_id("userId", user_id)?;
    check_group("group", group)?;
    if let Some(hub) = ctx.hub() {
        call.matched = Some(hub.remove_user_from_group(user_id, group));
        ctx.service.release_hub(&hub);
    }
    Ok(Reply::NoContent)
}

/// RemoveUserFromAllGroups; releases the hub when that was its last assignment.
fn remove_user_from_all_groups(
    ctx: &Ctx<'_>,
    user_id: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_id("userId", user_id)?;
    if let Some(hub) = ctx.hub() {
        let left = hub.remove_user_from_all_groups(user_id);
        warn_implicit_dropped(ctx, &left);
        call.matched = Some(left.existing);
        ctx.service.release_hub(&hub);
    }
    Ok(Reply::NoContent)
}

/// SendToAll / SendToGroup / SendToConnection / SendToUser.
async fn send_to<B>(
    ctx: &Ctx<'_>,
    scope: Scope<'_>,
    body: B,
    call: &mut Call,
) -> Result<Reply, RestError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    check_scope(scope)?;
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
    let namespace = match &payload {
        SendPayload::Disconnect { namespace, .. } => Some(namespace.as_str()),
        SendPayload::Packet { .. } => None,
    };
    let hub = ctx.hub();
    let recipients = hub
        .as_ref()
        .map(|hub| hub.select(scope, &selection, namespace))
        .unwrap_or_default();
    let why_empty = recipients
        .is_empty()
        .then(|| why_nothing_matched(hub.as_deref(), scope, &selection.filter))
        .flatten();
    let report = send::deliver(&payload, &recipients);
    call.matched = Some(recipients.len());
    call.note = Some(send_note(&payload, why_empty));
    warn_undelivered(ctx, &report.skipped, recipients.len(), &call.target);
    Ok(Reply::Accepted)
}

/// Reads and parses a send body, keeping it for the call log.
async fn read_payload<B>(ctx: &Ctx<'_>, body: B, call: &mut Call) -> Result<SendPayload, RestError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let kind = request::send_media_type(ctx.headers)?;
    let bytes =
        request::read_body(ctx.headers, body, ctx.service.config().engine.max_payload).await?;
    call.keep_body(ctx.service, &bytes);
    let payload = send::parse_payload(&bytes, kind).inspect_err(|e| {
        if let send::PayloadError::DisconnectPayload { payload } = e {
            let rest = &ctx.service.hooks().rest;
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
    let rest = &ctx.service.hooks().rest;
    let live = || live_groups(ctx);
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

/// Every group the hub has right now, for the REST observer.
fn live_groups(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.hub().map(|h| h.known_groups()).unwrap_or_default()
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
            "{} of {recipients} recipient(s) of {target} did not get the message: their queue              is full or they just closed ({})",
            skipped.len(),
            name_some(skipped)
        ),
        Some(
            "a client that does not read its socket falls behind; the message was dropped for              it only"
                .into(),
        ),
    );
}

/// Explains an empty match by the groups it named that no connection is in: the target group
/// itself, else the groups the filter names (which may sit under a `not`, hence "names").
fn why_nothing_matched(hub: Option<&Hub>, scope: Scope<'_>, filter: &Filter) -> Option<String> {
    let exists = |name: &str| hub.is_some_and(|h| h.has_group(name));
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
async fn groups_by_filter<B>(
    ctx: &Ctx<'_>,
    add: bool,
    body: B,
    call: &mut Call,
) -> Result<Reply, RestError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    request::json_media_type(ctx.headers)?;
    let bytes = request::read_body(ctx.headers, body, MAX_GROUPS_BODY).await?;
    call.keep_body(ctx.service, &bytes);
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
    ctx.service
        .hooks()
        .rest
        .groups(&call_groups, &|| live_groups(ctx));
    let described: Vec<String> = groups.iter().map(|g| describe_group(g)).collect();
    call.target = format!("[{}]", described.join(", "));
    if !filter.is_match_all() {
        call.target.push_str(&format!(" where {filter}"));
    }
    let selection = Selection {
        excluded: Vec::new(),
        filter,
    };
    call.matched = Some(
        ctx.hub()
            .map_or(0, |hub| hub.set_groups(&selection, &groups, add)),
    );
    Ok(Reply::Ok)
}

/// AddConnectionToGroup: 404 when the connection does not exist (docs/protocol.md §0 A3).
fn add_connection_to_group(
    ctx: &Ctx<'_>,
    group: &str,
    connection_id: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_group("group", group)?;
    check_id("connectionId", connection_id)?;
    let joined = ctx.hub().is_some_and(|hub| hub.join(connection_id, group));
    if !joined {
        return Err(RestError::ConnectionNotFound {
            hub: ctx.hub.to_owned(),
            connection_id: connection_id.to_owned(),
        });
    }
    call.matched = Some(1);
    Ok(Reply::Ok)
}

/// AddUserToGroup: remembered for the user's future connections, applied to current ones.
fn add_user_to_group(
    ctx: &Ctx<'_>,
    user_id: &str,
    group: &str,
    call: &mut Call,
) -> Result<Reply, RestError> {
    check_id("userId", user_id)?;
    check_group("group", group)?;
    let hub = ctx
        .service
        .hub_or_create(ctx.hub)
        .ok_or_else(|| RestError::HubNotDeclared {
            hub: ctx.hub.to_owned(),
        })?;
    call.matched = Some(hub.add_user_to_group(user_id, group));
    Ok(Reply::Ok)
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
fn close(ctx: &Ctx<'_>, scope: Scope<'_>, call: &mut Call) -> Result<Reply, RestError> {
    check_scope(scope)?;
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
    let recipients = match ctx.hub() {
        Some(hub) => hub.select(scope, &selection, None),
        None => Vec::new(),
    };
    let mut skipped = Vec::new();
    for (id, handle) in &recipients {
        if !handle.send(ConnCommand::Close {
            reason: reason.clone(),
        }) {
            skipped.push(id.clone());
        }
    }
    call.matched = Some(recipients.len());
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
    Ok(Reply::NoContent)
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
fn list_group(ctx: &Ctx<'_>, group: &str, call: &mut Call) -> Result<Reply, RestError> {
    check_group("group", group)?;
    let paging = Paging::from_query(ctx.query)?;
    let members = ctx
        .hub()
        .map(|hub| hub.group_members(group))
        .unwrap_or_default();
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
    Ok(Reply::Json(body))
}

/// GenerateClientToken: a Socket.IO client token for this hub, signed with the primary key.
fn generate_token(ctx: &Ctx<'_>) -> Result<Reply, RestError> {
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
        aud: auth::client_audience(ctx.service.endpoint(), ctx.hub),
        sub: query
            .get("userId")
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        roles,
        groups,
        lifetime_secs: minutes.saturating_mul(60),
        now: auth::now_unix(),
    };
    let config = ctx.service.config();
    let key = config
        .access_keys
        .first()
        .map_or(auth::DEV_ACCESS_KEY, String::as_str);
    let token = auth::mint(key, &claims);
    Ok(Reply::Json(serde_json::json!({ "token": token })))
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
