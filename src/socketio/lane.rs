//! One socket's delivery lane (docs/protocol.md §14 decision 20): it takes the socket's webhook
//! events one at a time (in a task of its own while it has any, parked in its queue while it has
//! none), in protocol order — `connect`, then `connected`, then the user events in the order the
//! client sent them, then `disconnected` — and starts none while an earlier one is in flight or
//! between retries. Different sockets have different lanes and never wait for each other.
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
use super::queue::{self, Next, Receiver, Sender, Worker};
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

/// One socket's lane: its state, parked in its queue ([`super::queue`]) while it has nothing
/// to do, and run by a task of its own from the step that finds it parked until its queue is
/// empty again. An idle socket holds no task.
pub struct Lane {
    service: Arc<Service>,
    caller: Caller,
    namespace: Arc<str>,
    socket_id: Arc<str>,
    sender: EventSender<SioEvent>,
    accepted: bool,
    /// Accepted, but the client left before it was told: it never was connected for the client.
    abandoned: bool,
    /// User events dropped because they went with a refused or abandoned socket (decision 8),
    /// warned about once when the lane ends.
    dropped: usize,
    /// Held until the lane ends; see [`ConnectionEnd`].
    _end: Arc<ConnectionEnd>,
    /// The socket's webhook header block, made on its first event and reused by the next ones
    /// while the lane runs. A socket that has sent user events keeps it while parked (it will
    /// likely send more); one that only joined gives it back, so a connection that sits idle
    /// holds none. Boxed: it is most of the lane's state, which moves in and out of its task.
    requests: Option<Box<RequestCache>>,
    /// The lane has carried a user event: its header block is worth keeping while parked.
    sends_events: bool,
}

impl Lane {
    /// The lane of a new socket, parked until its first step (the connection sends `Connect`
    /// at once). Its tasks run on the service's task tracker (shutdown waits for them).
    pub fn open(
        service: &Arc<Service>,
        caller: Caller,
        namespace: Arc<str>,
        socket_id: Arc<str>,
        sender: EventSender<SioEvent>,
        end: Arc<ConnectionEnd>,
    ) -> Sender<Lane> {
        queue::queue(Lane {
            service: service.clone(),
            caller,
            namespace,
            socket_id,
            sender,
            accepted: false,
            abandoned: false,
            dropped: 0,
            _end: end,
            requests: None,
            sends_events: false,
        })
    }

    /// Takes the queued steps in order until the queue is empty (the lane parks, its task ends)
    /// or the socket's last step is done (the lane ends).
    async fn run(mut self, mut steps: Receiver<Lane>) {
        loop {
            match steps.take() {
                Next::Item(step) => {
                    if !self.step(step).await {
                        return;
                    }
                    // The exchange's session line waits for the recording's file: so does the lane.
                    self.service.traffic().recording_room().await;
                }
                Next::Closed => return,
                Next::Empty => match steps.park(self.parked()) {
                    Ok(()) => return,
                    Err((queue, lane)) => (steps, self) = (queue, lane),
                },
            }
        }
    }

    /// The lane as it waits for its next step.
    fn parked(mut self) -> Self {
        if !self.sends_events {
            self.requests = None;
        }
        self
    }

    /// The socket's header block, made when it has none.
    fn requests(requests: &mut Option<Box<RequestCache>>) -> &mut RequestCache {
        requests.get_or_insert_with(Box::default)
    }

    /// Does one step; false once it was the socket's last.
    async fn step(&mut self, step: Step) -> bool {
        match step {
            Step::Connect(event) => Box::pin(self.connect(event)).await,
            Step::User { event, cost } if self.accepted && !self.abandoned => {
                Box::pin(self.user_event(event, cost)).await
            }
            // Decision 8: events sent while `connect` was pending go with a socket that was
            // refused, or whose client left before it was told it joined.
            Step::User { .. } => self.dropped += 1,
            Step::Leave { reason, owed } => {
                Box::pin(self.leave(&reason, owed)).await;
                return false;
            }
        }
        true
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
        let verdict =
            match webhook::call(&self.service, &event, Self::requests(&mut self.requests)).await {
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

    /// Delivers a non-blocking event (retried; its ledger entry settled either way).
    async fn deliver(&mut self, event: &WebhookEvent, owed: Owed) {
        let requests = Self::requests(&mut self.requests);
        webhook::deliver(&self.service, event, owed, requests).await;
    }

    async fn connected(&mut self, owed: Owed) {
        let event = self.event(EventKind::Connected, Bytes::from_static(b"{}"));
        self.deliver(&event, owed).await;
        if faults::drops_transport(&self.service, &self.caller, &self.socket_id) {
            let _ = self.sender.send(SioEvent::FaultDisconnect).await;
        }
    }

    async fn user_event(&mut self, event: WebhookEvent, cost: usize) {
        self.sends_events = true;
        let replies =
            webhook::user_event(&self.service, &event, Self::requests(&mut self.requests)).await;
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
        self.deliver(&event, owed).await;
    }
}

impl Worker for Lane {
    type Item = Step;

    fn start(self, queue: Receiver<Self>) {
        let tracker = self.service.tracker().clone();
        tracker.spawn(self.run(queue));
    }

    /// A socket that sends events keeps a slot for its next one (as it keeps its header
    /// block); one that only joined keeps none.
    fn idle_slots(&self) -> usize {
        usize::from(self.sends_events)
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if self.dropped == 0 {
            return;
        }
        let why = if self.accepted {
            "the client left before it was told it joined"
        } else {
            "its connect was refused"
        };
        self.service.traffic().emit(TrafficEvent::Warning {
            message: format!(
                "conn={} {}: dropped {} event(s) sent while `connect` was pending: {why}",
                self.caller.connection_id, self.namespace, self.dropped
            ),
            hint: None,
        });
    }
}
