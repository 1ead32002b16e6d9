//! The replay loop: for each session, for each recorded event in order, open the sink's capture
//! window, send the event to the target through [`Upstream::call`], once (the same CloudEvents request,
//! signature and abuse-protection preflight as `serve`, with a fresh `ce-id` and `ce-time`), wait
//! for the answer and the settle window, close the window, and compare.
//!
//! Events are sent one at a time, so every REST call that arrives while an event is handled, or
//! within `--settle` after its answer, belongs to it. Pacing (`--speed`) only adds waits between
//! events. The first event decides whether the target is reachable at all: no connection there is
//! [`ReplayError::Unreachable`] (exit 2), not a mismatch. Progress and per-event results go to an
//! [`Observer`]; the CLI renders them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::Method;
use tokio::time::Instant;

use super::ReplayError;
use super::compare::{self, CallView, Rules, Verdict};
use super::session::{Expectation, Session, Update};
use super::sink::{CapturedCall, Sink};
use crate::lint::{Collected, Finding};
use crate::traffic::record::RecordedResponse;
use crate::upstream::client::StampSource;
use crate::upstream::cloudevents::{self, CeStamp};
use crate::upstream::{Upstream, UpstreamSettings, WebhookError};

/// The `WebHook-Request-Origin` replay sends: the host of the sink's endpoint.
pub const ORIGIN: &str = "localhost";
/// How the upstream client words a preflight that got no HTTP answer at all.
const PREFLIGHT_NOT_SENT: &str = "could not be sent";

/// Pacing between events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// No waiting: the next event as soon as the previous one settled.
    Max,
    /// The recorded gaps divided by this factor (1 = real time).
    Factor(f64),
}

/// A `--speed` value that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a speed; use max, realtime or a factor such as 2 (twice as fast) or 0.5 (half \
     speed)"
)]
pub struct SpeedError(String);

impl std::str::FromStr for Speed {
    type Err = SpeedError;

    fn from_str(text: &str) -> Result<Speed, SpeedError> {
        match text.trim() {
            "max" => Ok(Speed::Max),
            "realtime" => Ok(Speed::Factor(1.0)),
            other => match other.trim_end_matches('x').parse::<f64>() {
                Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
                _ => Err(SpeedError(text.to_owned())),
            },
        }
    }
}

/// Everything a replay needs besides the sessions.
#[derive(Debug, Clone)]
pub struct Options {
    /// Handler URL template; `{hub}` and `{event}` are substituted.
    pub target: String,
    /// Signs the replayed events and verifies (leniently) the handler's REST tokens.
    pub access_key: String,
    /// Where the sink listens (`localhost` = 127.0.0.1 and ::1).
    pub rest_host: String,
    pub rest_port: u16,
    pub speed: Speed,
    /// How long after an answer REST calls still belong to the event.
    pub settle: Duration,
    /// Per webhook request.
    pub timeout: Duration,
    /// Send the abuse-protection preflight.
    pub preflight: bool,
    pub rules: Rules,
    /// Rewrite the sessions' expectations with what the target does now.
    pub update: bool,
    /// `--strict`: run the contract lint over the exchanges and the handler's REST calls.
    pub strict: bool,
}

/// What replaying one event produced.
#[derive(Debug, Clone)]
pub struct EventResult {
    /// Index into [`Session::events`].
    pub index: usize,
    pub actual: Expectation,
    pub calls: Vec<CapturedCall>,
    pub verdict: Verdict,
    /// Time from sending the event to closing its window.
    pub elapsed: Duration,
    /// Nothing was listening at the target (the handler is gone).
    pub unreachable: bool,
    /// `--strict`: contract-lint findings while this event was handled (its answer and the
    /// REST calls in its window).
    pub findings: Vec<Finding>,
}

/// What replaying one session produced.
#[derive(Debug, Clone)]
pub struct SessionResult {
    pub results: Vec<EventResult>,
    /// With `--update`: how many events got new expectations (0: the file was left alone as
    /// nothing differed). `None` without `--update`, or when the update was refused.
    pub updated: Option<usize>,
}

impl SessionResult {
    /// Events compared and found different.
    pub fn mismatches(&self) -> usize {
        self.results.iter().filter(|r| !r.verdict.matched()).count()
    }

    /// Contract-lint findings (`--strict`).
    pub fn findings(&self) -> usize {
        self.results.iter().map(|r| r.findings.len()).sum()
    }
}

/// Receives progress; the CLI renders it.
pub trait Observer {
    /// The sink listens; `events` will be replayed in all.
    fn started(&mut self, _sink_endpoint: &str, _events: usize) {}
    /// The events of `session` come next.
    fn session(&mut self, _session: &Session) {}
    /// One event was replayed and compared.
    fn event(&mut self, _session: &Session, _result: &EventResult) {}
    /// Something the user should know that is not a mismatch.
    fn warning(&mut self, _message: &str) {}
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// One per session, in the order given.
    pub sessions: Vec<SessionResult>,
    /// The sink's REST warnings (tokens, late calls).
    pub warnings: Vec<String>,
    /// Where the sink listened.
    pub sink_endpoint: String,
}

impl Outcome {
    pub fn mismatches(&self) -> usize {
        self.sessions.iter().map(SessionResult::mismatches).sum()
    }

    /// Contract-lint findings (`--strict`), all sessions.
    pub fn findings(&self) -> usize {
        self.sessions.iter().map(SessionResult::findings).sum()
    }
}

/// The label used in messages: `event #3 say (chat.jsonl:12)`.
pub fn label(session: &Session, index: usize) -> String {
    let event = &session.events[index];
    let file = session
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "event #{} `{}` ({file}:{})",
        index + 1,
        event.call.event,
        event.line
    )
}

/// Replays `sessions` against `options.target` (see the module docs).
pub async fn run(
    sessions: &[Session],
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Outcome, ReplayError> {
    let mut replayer = Replayer::start(options).await?;
    let total = sessions.iter().map(|s| s.events.len()).sum();
    observer.started(replayer.sink.endpoint(), total);
    let mut results = Vec::with_capacity(sessions.len());
    let mut warnings = Vec::new();
    for session in sessions {
        observer.session(session);
        let done = replayer.session(session, observer).await?;
        let updated = if options.update {
            match update(session, &done)? {
                Ok(count) => Some(count),
                Err(refused) => {
                    observer.warning(&refused);
                    warnings.push(refused);
                    None
                }
            }
        } else {
            None
        };
        results.push(SessionResult {
            results: done,
            updated,
        });
    }
    for warning in replayer.sink.warnings() {
        observer.warning(&warning);
        warnings.push(warning);
    }
    Ok(Outcome {
        sessions: results,
        warnings,
        sink_endpoint: replayer.sink.endpoint().to_owned(),
    })
}

/// What the loop holds across events: the upstream client and its settings, the sink, the lint.
struct Replayer<'a> {
    options: &'a Options,
    settings: UpstreamSettings,
    upstream: Upstream,
    sink: Sink,
    lint: Option<Arc<Collected>>,
    /// No event was sent yet: the next answer decides whether the target is there at all.
    first: bool,
}

impl<'a> Replayer<'a> {
    /// Checks the target template and starts the sink.
    async fn start(options: &'a Options) -> Result<Replayer<'a>, ReplayError> {
        let settings = UpstreamSettings {
            url_template: options.target.clone(),
            access_keys: vec![options.access_key.clone()],
            origin: ORIGIN.to_owned(),
            timeout: options.timeout,
            preflight: options.preflight,
            retry_delays: Vec::new(),
        };
        check_target(&settings)?;
        let lint = options
            .strict
            .then(|| Arc::new(Collected::new(crate::lint::DEFAULT_SLOW)));
        let sink = Sink::start(
            &options.rest_host,
            options.rest_port,
            &options.access_key,
            options.rules.clone(),
            lint.clone(),
        )
        .await
        .map_err(|source| ReplayError::RestPort {
            port: options.rest_port,
            source,
        })?;
        Ok(Replayer {
            options,
            settings,
            upstream: Upstream::new().with_stamps(fresh_stamps()),
            sink,
            lint,
            first: true,
        })
    }

    /// Replays the events of one session in order, paced by `--speed`.
    async fn session(
        &mut self,
        session: &Session,
        observer: &mut dyn Observer,
    ) -> Result<Vec<EventResult>, ReplayError> {
        self.sink.set_world(session.world.clone());
        let mut done = Vec::with_capacity(session.events.len());
        let mut clock: Option<Clock> = None;
        for index in 0..session.events.len() {
            pace(&mut clock, self.options.speed, &session.events[index]).await;
            let result = self.event(session, index).await?;
            observer.event(session, &result);
            done.push(result);
        }
        Ok(done)
    }

    /// Sends one event, waits for its answer and the settle window, and compares.
    async fn event(&mut self, session: &Session, index: usize) -> Result<EventResult, ReplayError> {
        let event = &session.events[index];
        self.sink.open(label(session, index), &event.rest);
        let started = Instant::now();
        let webhook = event.to_webhook();
        let call = self.upstream.call(&self.settings, &webhook);
        let outcome = call.once().send(|_| {}).await.result;
        if let Some(lint) = &self.lint {
            crate::lint::check_webhook(lint.as_ref(), &webhook, &outcome);
        }
        if std::mem::take(&mut self.first) {
            first_contact(&outcome)?;
        }
        tokio::time::sleep(self.options.settle).await;
        let calls = self.sink.close().await;
        let findings = self.lint.as_ref().map(|l| l.take()).unwrap_or_default();
        let unreachable = matches!(outcome, Err(WebhookError::Unreachable { .. }));
        let actual = actual_of(outcome);
        let rules = &self.options.rules;
        let views: Vec<CallView> = calls
            .iter()
            .map(|c| CallView::new(&c.call, rules))
            .collect();
        let verdict = compare::compare(event, &actual, &views, rules);
        Ok(EventResult {
            index,
            actual,
            calls,
            verdict,
            elapsed: started.elapsed(),
            unreachable,
            findings,
        })
    }
}

/// The pacing clock of a recording run: the run, when its first event was sent, and that
/// event's recorded `t`.
type Clock = (usize, Instant, f64);

/// Under `--speed <factor>`, waits until the recorded gap since the run's first event has passed
/// (divided by the factor); the first event of each run starts the clock.
async fn pace(clock: &mut Option<Clock>, speed: Speed, event: &super::session::Event) {
    let Speed::Factor(factor) = speed else {
        return;
    };
    match *clock {
        Some((run, start, t0)) if run == event.run => {
            let gap_ms = (event.t - t0).max(0.0) / factor;
            tokio::time::sleep_until(start + Duration::from_secs_f64(gap_ms / 1000.0)).await;
        }
        _ => *clock = Some((event.run, Instant::now(), event.t)),
    }
}

/// The first event's outcome: a target that cannot be reached, or refuses the preflight, ends
/// the replay (exit 2) instead of becoming a mismatch.
fn first_contact(
    outcome: &Result<crate::upstream::WebhookResponse, WebhookError>,
) -> Result<(), ReplayError> {
    match outcome {
        Err(WebhookError::Unreachable { url, cause, .. }) => Err(ReplayError::Unreachable {
            url: url.clone(),
            cause: cause.clone(),
        }),
        // The preflight is the first request: not reaching it is not reaching the target.
        Err(WebhookError::Preflight { url, detail }) if detail.contains(PREFLIGHT_NOT_SENT) => {
            Err(ReplayError::Unreachable {
                url: url.clone(),
                cause: detail.clone(),
            })
        }
        Err(WebhookError::Preflight { url, detail }) => Err(ReplayError::Preflight {
            url: url.clone(),
            detail: detail.clone(),
        }),
        _ => Ok(()),
    }
}

/// What the target did, in the recording's terms.
fn actual_of(outcome: Result<crate::upstream::WebhookResponse, WebhookError>) -> Expectation {
    match outcome {
        Ok(r) => Expectation::Response(RecordedResponse {
            status: r.status,
            content_type: r.content_type().map(String::from),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            latency_ms: crate::traffic::millis(r.latency),
        }),
        Err(e) => Expectation::Error(e.to_string()),
    }
}

/// `ce-id`s unique across replays (`<random run id>-<n>`), so a handler that deduplicates events
/// by id never mistakes a second replay for a retry; `ce-time` is now.
fn fresh_stamps() -> StampSource {
    let run: u64 = rand::random();
    let next = Arc::new(AtomicU64::new(1));
    Arc::new(move || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        CeStamp::new(format!("{run:016x}-{n}"), SystemTime::now())
    })
}

/// Refuses a template the upstream client could never send to.
fn check_target(settings: &UpstreamSettings) -> Result<(), ReplayError> {
    if !settings.url_template.starts_with("http://") {
        return Err(ReplayError::InvalidTarget {
            template: settings.url_template.clone(),
            detail: "only http:// URLs are supported".into(),
        });
    }
    cloudevents::preflight_request(settings, "hub", Method::OPTIONS)
        .map(|_| ())
        .map_err(|e| ReplayError::InvalidTarget {
            template: settings.url_template.clone(),
            detail: e.to_string(),
        })
}

/// `--update`: rewrites the expectations of the events that mismatched with what the target
/// answered now (matched and ignored events keep their lines byte for byte, so the file's diff
/// shows only real changes). Returns how many events changed. Refused (`Ok(Err(why))`) when the
/// target stopped answering midway, so a crash never becomes the new expectation.
fn update(
    session: &Session,
    results: &[EventResult],
) -> Result<Result<usize, String>, ReplayError> {
    let unreachable = results.iter().filter(|r| r.unreachable).count();
    if unreachable > 0 {
        return Ok(Err(format!(
            "{}: not updated: {unreachable} event(s) found the target unreachable; fix the \
             handler and run --update again",
            session.path.display()
        )));
    }
    let updates: Vec<Update> = results
        .iter()
        .filter(|r| !r.verdict.matched())
        .map(|r| Update {
            ordinal: session.events[r.index].ordinal,
            expected: r.actual.clone(),
            calls: r.calls.clone(),
        })
        .collect();
    if !updates.is_empty() {
        session.rewrite(&updates)?;
    }
    Ok(Ok(updates.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("realtime".parse::<Speed>(), Ok(Speed::Factor(1.0)));
        assert_eq!("2".parse::<Speed>(), Ok(Speed::Factor(2.0)));
        assert_eq!("0.5x".parse::<Speed>(), Ok(Speed::Factor(0.5)));
        assert!("0".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
    }

    #[test]
    fn speed_error_message_text() {
        assert_eq!(
            "fast".parse::<Speed>().unwrap_err().to_string(),
            "`fast` is not a speed; use max, realtime or a factor such as 2 (twice as fast) or \
             0.5 (half speed)"
        );
    }
}
