//! The contract lint: every webhook answer and every REST call the developer's handler makes is
//! checked against what the cloud service and its clients expect (docs/protocol.md §5, §7, §8, §9, §14),
//! and each finding is reported once per occurrence as a [`TrafficEvent::Lint`] line naming the
//! rule and the docs/protocol.md section, recorded as a `lint` session line, and counted for the
//! summary printed at shutdown ([`TrafficEvent::LintSummary`]).
//!
//! The lint never changes an outcome: the emulator still does what the cloud would (refuse,
//! drop, deliver); the lint only says that the handler relied on something it should not.
//! The lint is a hook: `serve` plugs a [`Live`] linter into the service as its webhook and REST
//! observer (`crate::hooks`), so `socketio` reports every exchange ([`check_webhook`]) and `rest`
//! what its calls rely on ([`check_api_version`], [`check_send`], [`check_disconnect_payload`],
//! [`check_groups`]) without naming this module; `replay --strict` calls the same checks
//! directly. Which groups ever existed is remembered here (bounded by [`MAX_KNOWN_GROUPS`]),
//! because hubs forget their empty groups. The checks report through the [`Findings`] trait:
//! [`Live`] logs and records each finding; `replay --strict` collects them per event in a
//! [`Collected`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::hooks::{GroupUse, LiveGroups, RestObserver, WebhookObserver};
use crate::service::group;
use crate::socketio::packet::{self as sio, PacketType};
use crate::traffic::{Traffic, TrafficEvent};
use crate::upstream::{EventKind, ReplyPackets, WebhookError, WebhookEvent, WebhookResponse};

/// Default `--lint-slow`: a blocking answer slower than this is reported.
pub const DEFAULT_SLOW: Duration = crate::config::DEFAULT_LINT_SLOW;

/// Group names remembered as "existed once" across all hubs; beyond it, nothing more is
/// learned and the "never existed" rules stay silent rather than guess.
pub const MAX_KNOWN_GROUPS: usize = 65_536;

/// One lint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    ConnectStatus,
    ConnectRefusalBody,
    ReplyNotPacket,
    AckUnknownId,
    ReplyNamespace,
    ReplyContentType,
    SlowResponse,
    SystemEventStatus,
    GroupName,
    NamespaceNeverJoined,
    DisconnectPayload,
    FilterUnknownGroup,
    ApiVersion,
}

impl Rule {
    /// Every rule, in documentation order.
    #[cfg(test)]
    pub const ALL: [Rule; 13] = [
        Rule::ConnectStatus,
        Rule::ConnectRefusalBody,
        Rule::ReplyNotPacket,
        Rule::AckUnknownId,
        Rule::ReplyNamespace,
        Rule::ReplyContentType,
        Rule::SlowResponse,
        Rule::SystemEventStatus,
        Rule::GroupName,
        Rule::NamespaceNeverJoined,
        Rule::DisconnectPayload,
        Rule::FilterUnknownGroup,
        Rule::ApiVersion,
    ];

    /// The rule id shown in the log and the recording.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ConnectStatus => "connect-status",
            Rule::ConnectRefusalBody => "connect-refusal-body",
            Rule::ReplyNotPacket => "reply-not-packet",
            Rule::AckUnknownId => "ack-unknown-id",
            Rule::ReplyNamespace => "reply-namespace",
            Rule::ReplyContentType => "reply-content-type",
            Rule::SlowResponse => "slow-response",
            Rule::SystemEventStatus => "system-event-status",
            Rule::GroupName => "group-name",
            Rule::NamespaceNeverJoined => "namespace-never-joined",
            Rule::DisconnectPayload => "disconnect-payload",
            Rule::FilterUnknownGroup => "filter-unknown-group",
            Rule::ApiVersion => "api-version",
        }
    }

    /// The docs/protocol.md section the rule enforces.
    pub fn section(self) -> &'static str {
        match self {
            Rule::ConnectStatus | Rule::ConnectRefusalBody => "§5.2",
            Rule::ReplyNotPacket
            | Rule::AckUnknownId
            | Rule::ReplyNamespace
            | Rule::ReplyContentType => "§5.4",
            Rule::SlowResponse => "§14 (decision 14)",
            Rule::SystemEventStatus => "§5.3",
            Rule::GroupName => "§8",
            Rule::NamespaceNeverJoined | Rule::DisconnectPayload => "§7.3",
            Rule::FilterUnknownGroup => "§9",
            Rule::ApiVersion => "§7.1",
        }
    }

    /// What the handler should do instead.
    fn hint(self) -> &'static str {
        match self {
            Rule::ConnectStatus => {
                "accept with 200 (or 204), refuse with 401/403 and a short text/plain reason"
            }
            Rule::ConnectRefusalBody => {
                "the service reads only the status: answer 401/403 to refuse a connect"
            }
            Rule::ReplyNotPacket => {
                "answer 200 with an Engine.IO packet such as 43/ns,7[\"ok\"], or 204 for no ack"
            }
            Rule::AckUnknownId => {
                "ack with the id of the event you answer: 42/ns,7[…] → 43/ns,7[…]"
            }
            Rule::ReplyNamespace => "answer in the namespace the event came from",
            Rule::ReplyContentType => "answer with Content-Type: text/plain",
            Rule::SlowResponse => {
                "the cloud gives up on slow handlers; answer blocking events quickly and do slow \
                 work after answering"
            }
            Rule::SystemEventStatus => {
                "connected/disconnected answers are ignored; a failing handler here usually means \
                 an unhandled exception"
            }
            Rule::GroupName => "build Socket.IO groups as 0~<b64url(namespace)>~<b64url(room)>",
            Rule::NamespaceNeverJoined => {
                "check the namespace in the packet (`42/ns,[…]`) against the one clients join"
            }
            Rule::DisconnectPayload => {
                "send 41/ns, or 41/ns,{\"close\":true} to also close the connection"
            }
            Rule::FilterUnknownGroup => {
                "check how the filter's group names are built (0~<b64url(ns)>~<b64url(room)>)"
            }
            Rule::ApiVersion => "use api-version=2024-01-01 or 2024-12-01",
        }
    }
}

/// The findings of one run and the groups seen so far.
#[derive(Debug)]
pub struct Linter {
    /// `--lint-slow`.
    pub slow: Duration,
    counts: Mutex<BTreeMap<Rule, u64>>,
    /// A 64-bit hash of `<hub lower-case>\n<group>` for every group that existed: one table
    /// with no block per name, so a storm of sockets leaves no small allocations behind (a
    /// collision, about one in 2^64 per pair, only hides a finding).
    known: Mutex<HashSet<u64>>,
}

impl Linter {
    /// A linter with no findings.
    pub fn new(slow: Duration) -> Self {
        Linter {
            slow,
            counts: Mutex::new(BTreeMap::new()),
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Findings per rule id so far.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(rule, n)| (rule.id().to_owned(), *n))
            .collect()
    }

    /// The shutdown summary line.
    pub fn summary(&self) -> TrafficEvent<'static> {
        let rules = self.counts();
        TrafficEvent::LintSummary {
            total: rules.values().sum(),
            rules,
        }
    }

    fn count(&self, rule: Rule) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rule)
            .or_default() += 1;
    }

    /// Remembers that `group` existed in `hub`.
    pub fn learn(&self, hub: &str, group: &str) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() < MAX_KNOWN_GROUPS {
            known.insert(group_key(hub, group));
        }
    }

    /// Whether `group` existed in `hub` at some point (or memory is full, so nobody can tell).
    fn existed(&self, hub: &str, group: &str) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.len() >= MAX_KNOWN_GROUPS || known.contains(&group_key(hub, group))
    }
}

/// The key [`Linter`] remembers a group by: hub names compare without case, group names with.
fn group_key(hub: &str, group: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = KEY_HASH.build_hasher();
    for byte in hub.bytes() {
        hasher.write_u8(byte.to_ascii_lowercase());
    }
    hasher.write_u8(b'\n');
    hasher.write(group.as_bytes());
    hasher.finish()
}

/// One fixed hasher for [`group_key`] (SipHash with zero keys: the keys only need to agree
/// within a run).
const KEY_HASH: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

/// Where the checks report to: `serve`'s [`Live`] linter (live log, recording) or replay's
/// [`Collected`] findings.
pub trait Findings: Send + Sync {
    /// The counts and the groups seen so far.
    fn linter(&self) -> &Linter;
    /// Shows or keeps one finding (already counted).
    fn finding(&self, rule: Rule, message: String);
}

/// `serve`'s lint: the service's webhook and REST observer; each finding goes to the live log
/// and the recording.
#[derive(Debug)]
pub struct Live {
    linter: Linter,
    traffic: Traffic,
}

impl Live {
    /// Reports to `traffic`; blocking answers slower than `slow` are findings.
    pub fn new(slow: Duration, traffic: Traffic) -> Self {
        Live {
            linter: Linter::new(slow),
            traffic,
        }
    }

    /// The shutdown summary line.
    pub fn summary(&self) -> TrafficEvent<'static> {
        self.linter.summary()
    }
}

/// Learns the groups `hub` has right now.
fn learn_live(service: &dyn Findings, hub: &str, live: LiveGroups<'_>) {
    for name in live() {
        service.linter().learn(hub, &name);
    }
}

impl Findings for Live {
    fn linter(&self) -> &Linter {
        &self.linter
    }

    fn finding(&self, rule: Rule, message: String) {
        self.traffic.emit(TrafficEvent::Lint {
            rule: rule.id().to_owned(),
            section: rule.section().to_owned(),
            message,
            hint: Some(rule.hint().to_owned()),
        });
    }
}

impl WebhookObserver for Live {
    fn answered(&self, event: &WebhookEvent, result: &Result<WebhookResponse, WebhookError>) {
        check_webhook(self, event, result);
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        self.linter.counts()
    }
}

/// The REST checks, the same for `serve` ([`Live`]) and `replay --strict` ([`Collected`]): the
/// REST operations report to whichever their store names.
impl<F: Findings> RestObserver for F {
    fn api_version(&self, operation: &str, version: &str, known: &[&str]) {
        check_api_version(self, operation, version, known);
    }

    fn disconnect_payload(&self, operation: &str, payload: &str) {
        check_disconnect_payload(self, operation, payload);
    }

    fn groups(&self, call: &GroupUse<'_>, live: LiveGroups<'_>) {
        learn_live(self, call.hub, live);
        check_groups(
            self,
            call.hub,
            call.operation,
            call.groups,
            call.filter_groups,
            call.adds,
        );
    }

    fn send(&self, hub: &str, operation: &str, namespace: &str, live: LiveGroups<'_>) {
        learn_live(self, hub, live);
        check_send(self, hub, operation, namespace);
    }
}

/// One finding as data (replay's report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub section: &'static str,
    pub message: String,
}

/// Findings kept in memory until taken (`replay --strict`), bounded by [`MAX_COLLECTED`].
#[derive(Debug)]
pub struct Collected {
    linter: Linter,
    found: Mutex<Vec<Finding>>,
}

/// Findings [`Collected`] keeps between two [`Collected::take`]s; later ones are only counted.
pub const MAX_COLLECTED: usize = 1_000;

impl Collected {
    /// No findings yet.
    pub fn new(slow: Duration) -> Self {
        Collected {
            linter: Linter::new(slow),
            found: Mutex::new(Vec::new()),
        }
    }

    /// The findings since the last call, oldest first.
    pub fn take(&self) -> Vec<Finding> {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Findings for Collected {
    fn linter(&self) -> &Linter {
        &self.linter
    }

    fn finding(&self, rule: Rule, message: String) {
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if found.len() < MAX_COLLECTED {
            found.push(Finding {
                rule: rule.id(),
                section: rule.section(),
                message,
            });
        }
    }
}

/// Reports one finding: counted, then shown or kept by `service`.
pub fn report(service: &dyn Findings, rule: Rule, message: String) {
    service.linter().count(rule);
    service.finding(rule, message);
}

/// Remembers that `group` exists in `hub` (for the "never existed" rules).
pub fn learn_group(service: &dyn Findings, hub: &str, group: &str) {
    service.linter().learn(hub, group);
}

fn who(event: &WebhookEvent) -> String {
    format!(
        "`{}` (hub {}, {} socket {})",
        event.kind.event_name(),
        event.hub,
        event.namespace,
        event.socket_id
    )
}

/// Checks one webhook exchange.
pub fn check_webhook(
    service: &dyn Findings,
    event: &WebhookEvent,
    result: &Result<WebhookResponse, WebhookError>,
) {
    if event.kind == EventKind::Connect {
        // A socket that is being accepted makes its namespace and own room known.
        learn_group(
            service,
            &event.hub,
            &group::namespace_group(&event.namespace),
        );
        learn_group(
            service,
            &event.hub,
            &group::room_group(&event.namespace, &event.socket_id),
        );
    }
    let Ok(response) = result else {
        return;
    };
    if event.kind.is_blocking() && response.latency > service.linter().slow {
        report(
            service,
            Rule::SlowResponse,
            format!(
                "the handler took {} to answer {}; --lint-slow is {}",
                humantime::format_duration(Duration::from_millis(
                    response.latency.as_millis() as u64
                )),
                who(event),
                humantime::format_duration(service.linter().slow)
            ),
        );
    }
    match &event.kind {
        EventKind::Connect => check_connect(service, event, response),
        EventKind::Connected | EventKind::Disconnected => {
            if response.status >= 400 {
                report(
                    service,
                    Rule::SystemEventStatus,
                    format!("the handler answered {} to {}", response.status, who(event)),
                );
            }
        }
        EventKind::User(_) => check_reply(service, event, response),
    }
}

fn check_connect(service: &dyn Findings, event: &WebhookEvent, response: &WebhookResponse) {
    let status = response.status;
    if !(200..300).contains(&status) && !(400..500).contains(&status) {
        report(
            service,
            Rule::ConnectStatus,
            format!(
                "the handler answered {status} to {}; a connect is accepted with 2xx and refused \
                 with 4xx, anything else is a handler failure (the socket was refused)",
                who(event)
            ),
        );
        return;
    }
    if (200..300).contains(&status) && looks_like_refusal(&response.body) {
        report(
            service,
            Rule::ConnectRefusalBody,
            format!(
                "the handler answered {status} to {} with a body that reads like a refusal ({}); \
                 the socket was accepted",
                who(event),
                crate::traffic::preview(&String::from_utf8_lossy(&response.body), 80)
            ),
        );
    }
}

/// A 2xx connect body that meant "no": `{"statusCode":4xx/5xx}` (the Functions return shape),
/// an `error` key, or a short text saying unauthorized / forbidden / denied / rejected.
fn looks_like_refusal(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return false;
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        let status = map
            .get("statusCode")
            .or_else(|| map.get("status"))
            .and_then(Value::as_u64);
        return status.is_some_and(|s| s >= 400) || map.contains_key("error");
    }
    let lower = text.to_ascii_lowercase();
    ["unauthori", "forbidden", "denied", "reject", "not allowed"]
        .iter()
        .any(|w| lower.contains(w))
}

fn check_reply(service: &dyn Findings, event: &WebhookEvent, response: &WebhookResponse) {
    if !response.is_success() || response.status == 204 || response.body.is_empty() {
        return;
    }
    let text_type = response.content_type().as_deref().is_some_and(|ct| {
        ct.trim_start()
            .get(..5)
            .is_some_and(|kind| kind.eq_ignore_ascii_case("text/"))
    });
    if !text_type {
        report(
            service,
            Rule::ReplyContentType,
            format!(
                "the handler answered {} with Content-Type {}; the reply is an Engine.IO packet \
                 sent as text",
                who(event),
                response.content_type().as_deref().unwrap_or("(none)")
            ),
        );
    }
    // The answer is read in place: the packets forwarded to the client are its copies, not ours.
    let packets = ReplyPackets::read(response);
    let what = if packets.several() {
        "a packet of the handler's answer"
    } else {
        "the handler's answer"
    };
    for violation in packets.iter().filter_map(Result::err) {
        report(
            service,
            Rule::ReplyNotPacket,
            format!("{what} to {} was not forwarded: {violation}", who(event)),
        );
    }
    for packet in packets.iter().filter_map(Result::ok) {
        check_reply_packet(service, event, packet);
    }
}

/// Checks one forwarded packet of a user event's answer: its namespace and ack id.
fn check_reply_packet(service: &dyn Findings, event: &WebhookEvent, packet: &str) {
    // A forwarded packet is an Engine.IO message (`4` and a Socket.IO packet), read in place.
    let Some(data) = packet.strip_prefix('4') else {
        return;
    };
    let Ok(header) = sio::parse_header(data) else {
        return;
    };
    if header.nsp != &*event.namespace {
        report(
            service,
            Rule::ReplyNamespace,
            format!(
                "the handler answered {} with a packet for namespace {}; the client ignores it",
                who(event),
                header.nsp
            ),
        );
    }
    if matches!(header.kind, PacketType::Ack | PacketType::BinaryAck) {
        let sent = std::str::from_utf8(&event.body)
            .ok()
            .and_then(|b| b.strip_prefix('4'))
            .and_then(|p| sio::parse_header(p).ok())
            .and_then(|h| h.id);
        if header.id != sent {
            let asked = match sent {
                Some(id) => format!("the event's id is {id}"),
                None => "the event asked for no ack".to_owned(),
            };
            report(
                service,
                Rule::AckUnknownId,
                format!(
                    "the handler acked {} with id {}, but {asked}; the client drops it",
                    who(event),
                    header
                        .id
                        .map_or_else(|| "(none)".to_owned(), |id| id.to_string())
                ),
            );
        }
    }
}

/// Checks an `api-version` value of a REST call against the `known` ones.
pub fn check_api_version(service: &dyn Findings, operation: &str, version: &str, known: &[&str]) {
    if !known.contains(&version) {
        report(
            service,
            Rule::ApiVersion,
            format!(
                "{operation} used api-version={version}, which the cloud does not know (known: {})",
                known.join(", ")
            ),
        );
    }
}

/// Whether a group name means to be a Socket.IO group (it has the `0~` shape) but is not one.
fn bad_sio_group(name: &str) -> bool {
    (name.starts_with("0~") || name.matches('~').count() >= 2) && group::parse(name).is_none()
}

/// Checks group names a REST call names, and filter group literals; then learns the groups
/// the call adds (`adds`).
pub fn check_groups(
    service: &dyn Findings,
    hub: &str,
    operation: &str,
    groups: &[&str],
    filter_groups: &[&str],
    adds: bool,
) {
    for name in groups {
        if bad_sio_group(name) {
            report(
                service,
                Rule::GroupName,
                format!(
                    "{operation} names group `{name}`, which looks like a Socket.IO group but \
                     is not valid base64url `0~<namespace>~<room>`; no socket can be in it"
                ),
            );
        }
    }
    let mut reported = Vec::new();
    for name in filter_groups {
        if !service.linter().existed(hub, name) && !reported.contains(name) {
            reported.push(*name);
            report(
                service,
                Rule::FilterUnknownGroup,
                format!(
                    "{operation}'s filter names group `{name}`, which never existed in hub {hub}"
                ),
            );
        }
    }
    if adds {
        for name in groups {
            learn_group(service, hub, name);
        }
    }
}

/// Checks a REST send: the namespace of its packet must be one some socket joined.
pub fn check_send(service: &dyn Findings, hub: &str, operation: &str, namespace: &str) {
    if !service
        .linter()
        .existed(hub, &group::namespace_group(namespace))
    {
        report(
            service,
            Rule::NamespaceNeverJoined,
            format!(
                "{operation} sends to namespace {namespace}, which no socket of hub {hub} ever \
                 joined"
            ),
        );
    }
}

/// Checks a refused send payload: a DISCONNECT with a `payload` other than `{"close":…}`.
pub fn check_disconnect_payload(service: &dyn Findings, operation: &str, payload: &str) {
    report(
        service,
        Rule::DisconnectPayload,
        format!(
            "{operation} sent a DISCONNECT with payload `{payload}`; only {{\"close\":true}} \
             or {{\"close\":false}} is allowed (the call was refused with 400)"
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_an_id_and_a_section() {
        let ids: HashSet<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        for rule in Rule::ALL {
            assert!(rule.section().starts_with('§'), "{rule:?}");
            assert!(!rule.hint().is_empty());
        }
    }

    #[test]
    fn refusal_bodies() {
        assert!(looks_like_refusal(br#"{"statusCode":401}"#));
        assert!(looks_like_refusal(br#"{"error":"no"}"#));
        assert!(looks_like_refusal(b"Unauthorized"));
        assert!(looks_like_refusal(b"access denied"));
        assert!(!looks_like_refusal(b""));
        assert!(!looks_like_refusal(br#"{"statusCode":200}"#));
        assert!(!looks_like_refusal(b"welcome"));
    }

    #[test]
    fn socketio_group_shapes() {
        assert!(!bad_sio_group("0~L25z~cm0"));
        assert!(!bad_sio_group("0~L25z~"));
        assert!(!bad_sio_group("plain"));
        assert!(bad_sio_group("0~/ns~rm"));
        assert!(bad_sio_group("0~L25z~cm0="));
        assert!(bad_sio_group("x~y~z"));
    }

    /// The answer to `4` + `body` of socket `sock1` on `/`, as the lint reads it.
    fn reply_findings(content_type: &str, body: &str) -> Vec<(&'static str, String)> {
        let event = WebhookEvent {
            hub: "chat".into(),
            kind: EventKind::User("msg".into()),
            connection_id: "conn1".into(),
            namespace: "/".into(),
            socket_id: "sock1".into(),
            user_id: None,
            body: bytes::Bytes::from_static(b"420[\"msg\",1]"),
        };
        let response = WebhookResponse {
            url: "http://localhost/hook".into(),
            status: 200,
            head: crate::upstream::ResponseHead::new(200, "OK", &[("content-type", content_type)]),
            body: bytes::Bytes::from(body.to_owned()),
            latency: Duration::ZERO,
            attempts: 1,
        };
        let found = Collected::new(DEFAULT_SLOW);
        check_webhook(&found, &event, &Ok(response));
        found
            .take()
            .into_iter()
            .map(|f| (f.rule, f.message))
            .collect()
    }

    #[test]
    fn reply_read_in_place_finds_what_the_client_would_get() {
        // Forwarded packets are checked for their namespace and ack id; the others are named
        // by their place in the body, before them, as the forwarding layer words it.
        let found = reply_findings(
            " TEXT/plain",
            "430[\"ok\"]\u{1e}2\u{1e}43/other,0[]\u{1e}431[]",
        );
        let rules: Vec<&str> = found.iter().map(|(rule, _)| *rule).collect();
        assert_eq!(
            rules,
            ["reply-not-packet", "reply-namespace", "ack-unknown-id"]
        );
        assert!(
            found[0]
                .1
                .starts_with("a packet of the handler's answer to `msg`")
        );
        assert!(
            found[0]
                .1
                .contains("packet 2 of the 4 in the response body")
        );
        assert!(found[2].1.contains("with id 1, but the event's id is 0"));
        assert!(reply_findings("text/plain", "430[]").is_empty());
        let typed: Vec<_> = reply_findings("application/json", "430[]");
        assert_eq!(typed.len(), 1);
        assert_eq!(typed[0].0, "reply-content-type");
    }

    #[test]
    fn memory_is_per_hub() {
        let linter = Linter::new(DEFAULT_SLOW);
        linter.learn("Chat", "g");
        assert!(linter.existed("chat", "g"));
        assert!(!linter.existed("other", "g"));
    }
}
