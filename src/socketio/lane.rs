//! One socket's delivery lane (docs/protocol.md §14 decision 20): a task that takes the socket's webhook events one
//! at a time, in protocol order — `connect`, then `connected`, then the user events in the order
//! the client sent them, then `disconnected` — and starts none while an earlier one is in flight
//! or between retries. Different sockets have different lanes and never wait for each other.
//!
//! The connection ([`super::connection`]) feeds the lane [`Step`]s and hears back through its
//! session's event channel: the connect verdict, each user event's reply and the bytes that left
//! the lane (it bounds what waits here, docs/protocol.md §14 decision 21). The lane owns what happens after the
//! connection is gone: a socket accepted by a late `connect` answer still gets its
//! `disconnected`, and user events the client sent before leaving are still delivered first.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::connection::SioEvent;
use super::faults;
use super::queue::{self, Receiver, Sender};
use super::webhook::{self, Caller};
use crate::engineio::EventSender;
use crate::service::Service;
use crate::traffic::TrafficEvent;
use crate::upstream::cloudevents::RequestCache;
use crate::upstream::ledger::Owed;
use crate::upstream::{EventKind, WebhookEvent};

/// What the connection hands a lane.
#[derive(Debug)]
pub enum Step {
    /// The namespace CONNECT: the blocking `connect` call decides the socket's fate.
    Connect(WebhookEvent),
    /// A user event; `cost` is what it counts against the socket's bound until it leaves.
    User { event: WebhookEvent, cost: usize },
    /// The socket is gone, for this reason. `owed` is the `disconnected` ledger entry when the
    /// socket was accepted (a socket still connecting gets one if its `connect` is accepted).
    Leave { reason: String, owed: Option<Owed> },
}

/// Where `connected` waits for the client's `40…{"sid"}` (docs/protocol.md §14 decision 9): the connection answers
/// an accepted connect with a receiver that fires once that packet went to the transport.
pub type SentSlot = oneshot::Sender<oneshot::Receiver<()>>;

/// Writes the recording's `closed` line once the connection and all its lanes are done, so a
/// socket's `disconnected` exchange always comes before its connection's `closed` line.
pub struct ConnectionEnd {
    pub service: Arc<Service>,
    pub hub: String,
    pub connection_id: Arc<str>,
    pub reason: std::sync::OnceLock<String>,
}

impl Drop for ConnectionEnd {
    fn drop(&mut self) {
        let Some(reason) = self
            .reason
            .get()
            .filter(|_| self.service.traffic().recording())
        else {
            return;
        };
        self.service.traffic().emit(TrafficEvent::Closed {
            hub: self.hub.clone(),
            connection_id: self.connection_id.to_string(),
            reason: reason.clone(),
        });
    }
}

/// Enters a socket's `kind` event in the ledger, named for the shutdown summary.
pub fn owe(
    service: &Service,
    caller: &Caller,
    kind: &EventKind,
    namespace: &str,
    socket_id: &str,
) -> Owed {
    service.upstream().ledger().owe(format!(
        "`{}` of socket {socket_id} on {namespace} (hub {}, conn {})",
        kind.event_name(),
        caller.hub,
        caller.connection_id
    ))
}

/// One socket's lane.
pub struct Lane {
    service: Arc<Service>,
    caller: Caller,
    namespace: Arc<str>,
    socket_id: Arc<str>,
    sender: EventSender<SioEvent>,
    accepted: bool,
    /// Accepted, but the client left before it was told: it never was connected for the client.
    abandoned: bool,
    /// Held until the lane ends; see [`ConnectionEnd`].
    _end: Arc<ConnectionEnd>,
    /// The socket's webhook header block, made on its first event and reused by the next ones.
    /// Boxed: inline it is most of the lane's state, and a task's state is kept twice over
    /// (the future's captured arguments and its body's locals), so boxing it saves about
    /// 0.6 KiB per idle socket for one allocation per socket.
    requests: Box<RequestCache>,
}

impl Lane {
    /// Starts the lane of a new socket on the service's task tracker (shutdown waits for it).
    pub fn open(
        service: &Arc<Service>,
        caller: Caller,
        namespace: Arc<str>,
        socket_id: Arc<str>,
        sender: EventSender<SioEvent>,
        end: Arc<ConnectionEnd>,
    ) -> Sender<Step> {
        let (tx, rx) = queue::queue();
        let lane = Lane {
            service: service.clone(),
            caller,
            namespace,
            socket_id,
            sender,
            accepted: false,
            abandoned: false,
            _end: end,
            requests: Box::default(),
        };
        service.tracker().spawn(lane.run(rx));
        tx
    }

    async fn run(mut self, mut steps: Receiver<Step>) {
        let mut dropped = 0usize;
        while let Some(step) = steps.recv().await {
            match step {
                Step::Connect(event) => Box::pin(self.connect(event)).await,
                Step::User { event, cost } if self.accepted && !self.abandoned => {
                    Box::pin(self.user_event(event, cost)).await
                }
                // Decision 8: events sent while `connect` was pending go with a socket that was
                // refused, or whose client left before it was told it joined.
                Step::User { .. } => dropped += 1,
                Step::Leave { reason, owed } => {
                    Box::pin(self.leave(&reason, owed)).await;
                    break;
                }
            }
            // The exchange's session line waits for the recording's file: so does the lane.
            self.service.traffic().recording_room().await;
        }
        if dropped > 0 {
            let why = if self.accepted {
                "the client left before it was told it joined"
            } else {
                "its connect was refused"
            };
            self.service.traffic().emit(TrafficEvent::Warning {
                message: format!(
                    "conn={} {}: dropped {dropped} event(s) sent while `connect` was pending: {why}",
                    self.caller.connection_id, self.namespace
                ),
                hint: None,
            });
        }
    }

    fn event(&self, kind: EventKind, body: Bytes) -> WebhookEvent {
        self.caller
            .event(kind, &self.namespace, &self.socket_id, body)
    }

    fn owe(&self, kind: &EventKind) -> Owed {
        owe(
            &self.service,
            &self.caller,
            kind,
            &self.namespace,
            &self.socket_id,
        )
    }

    async fn connect(&mut self, event: WebhookEvent) {
        // No handler wants `connect`: the socket is accepted without a call.
        let verdict = match webhook::call(&self.service, &event, &mut self.requests).await {
            Some(result) => webhook::connect_verdict(&result),
            None => Ok(()),
        };
        self.accepted = verdict.is_ok();
        let (slot, sent) = oneshot::channel();
        let done = SioEvent::ConnectDone {
            socket_id: self.socket_id.clone(),
            verdict,
            sent: slot,
        };
        let heard = self.sender.send(done).await.is_ok();
        if !self.accepted {
            return;
        }
        if !heard {
            self.abandoned = true;
            return;
        }
        // The connection drops the slot when the client left before it was told.
        let owed = self.owe(&EventKind::Connected);
        let told = match sent.await {
            Ok(delivered) => delivered.await.is_ok(),
            Err(_) => false,
        };
        if told {
            self.connected(owed).await;
        } else {
            self.abandoned = true;
        }
    }

    async fn connected(&mut self, owed: Owed) {
        let event = self.event(EventKind::Connected, Bytes::from_static(b"{}"));
        webhook::deliver(&self.service, &event, owed, &mut self.requests).await;
        if faults::drops_transport(&self.service, &self.caller, &self.socket_id) {
            let _ = self.sender.send(SioEvent::FaultDisconnect).await;
        }
    }

    async fn user_event(&mut self, event: WebhookEvent, cost: usize) {
        let replies = webhook::user_event(&self.service, &event, &mut self.requests).await;
        let done = SioEvent::EventDone {
            socket_id: self.socket_id.clone(),
            replies,
            cost,
        };
        let _ = self.sender.send(done).await;
    }

    async fn leave(&mut self, reason: &str, owed: Option<Owed>) {
        if !self.accepted {
            return;
        }
        let owed = owed.unwrap_or_else(|| self.owe(&EventKind::Disconnected));
        self.service
            .traffic()
            .emit(TrafficEvent::SocketDisconnected {
                hub: self.caller.hub.to_string(),
                connection_id: self.caller.connection_id.to_string(),
                namespace: self.namespace.to_string(),
                socket_id: self.socket_id.to_string(),
                reason: reason.to_owned(),
            });
        let body = webhook::disconnected_body(reason);
        let event = self.event(EventKind::Disconnected, body);
        webhook::deliver(&self.service, &event, owed, &mut self.requests).await;
    }
}
