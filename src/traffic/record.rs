//! The session recorder behind `serve --record <FILE>`: one JSON object per line, appended and
//! flushed as it happens, so a `kill -9` leaves a file that is valid up to its last complete
//! line. The first line of each run is a [`RecordLine::Header`] naming the format and version;
//! then handshakes, client frames, webhook exchanges and REST calls follow in the order they
//! happened. Access tokens, keys and signatures are never written.
//!
//! Under `serve --seed` the recorder runs on a logical clock instead of the wall clock: every
//! reading of it is the next whole millisecond (1, 2, 3, …), taken under the same lock that
//! writes the line, so the same sequential scenario records byte-identical files.
//!
//! `sio-emu replay` reads these files back (see the README's REPLAY section for the format).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The `format` value of every session file.
pub const FORMAT: &str = "sio-emu-session";
/// The current format version; readers refuse newer major versions.
pub const VERSION: u32 = 1;
/// What replaces a secret in a recording.
pub const REDACTED: &str = "<redacted>";
/// The header's `startedAt` under the logical clock of `serve --seed`.
pub const LOGICAL_START: &str = "2024-01-01T00:00:00.000Z";

/// Direction of a client frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the client to the service.
    In,
    /// From the service to the client.
    Out,
}

/// A webhook response as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub latency_ms: f64,
}

/// One line of a session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RecordLine {
    /// First line of a recording run.
    #[serde(rename_all = "camelCase")]
    Header {
        format: String,
        version: u32,
        sio_emu_version: String,
        hubs: Vec<String>,
        endpoint: String,
        started_at: String,
    },
    /// An Engine.IO handshake (the `access_token` query value is redacted).
    #[serde(rename_all = "camelCase")]
    Handshake {
        t: f64,
        hub: String,
        #[serde(default)]
        connection_id: Option<String>,
        transport: String,
        #[serde(default)]
        user_id: Option<String>,
        #[serde(default)]
        query: BTreeMap<String, String>,
        #[serde(default)]
        refused: Option<String>,
    },
    /// One Engine.IO packet between a client and the service.
    #[serde(rename_all = "camelCase")]
    Frame {
        t: f64,
        hub: String,
        connection_id: String,
        direction: Direction,
        packet: String,
    },
    /// One webhook exchange: the request and what came back.
    #[serde(rename_all = "camelCase")]
    Webhook {
        t: f64,
        hub: String,
        event: String,
        ce_type: String,
        namespace: String,
        socket_id: String,
        connection_id: String,
        #[serde(default)]
        user_id: Option<String>,
        body: String,
        #[serde(default)]
        response: Option<RecordedResponse>,
        #[serde(default)]
        error: Option<String>,
    },
    /// One REST call the handler made.
    #[serde(rename_all = "camelCase")]
    Rest {
        t: f64,
        method: String,
        operation: String,
        hub: String,
        path: String,
        #[serde(default)]
        query: BTreeMap<String, Vec<String>>,
        #[serde(default)]
        body: String,
        status: u16,
    },
    /// An Engine.IO connection ended.
    #[serde(rename_all = "camelCase")]
    Closed {
        t: f64,
        hub: String,
        connection_id: String,
        reason: String,
    },
    /// A contract-lint finding (optional; readers that do not check contracts skip it).
    #[serde(rename_all = "camelCase")]
    Lint {
        t: f64,
        rule: String,
        section: String,
        message: String,
    },
    /// A fault injected by a `--fault` rule (readers that replay events skip it).
    #[serde(rename_all = "camelCase")]
    Fault {
        t: f64,
        rule: String,
        event: String,
        action: String,
    },
}

/// Appends lines to a session file.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<File>,
    start: Instant,
    /// The last logical tick handed out, when the clock is logical.
    logical: Option<AtomicU64>,
}

impl Recorder {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Recorder> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder {
            file: Mutex::new(file),
            start: Instant::now(),
            logical: None,
        })
    }

    /// Switches to the logical clock (`serve --seed`): each reading is the next millisecond.
    pub fn logical(mut self) -> Recorder {
        self.logical = Some(AtomicU64::new(0));
        self
    }

    /// Whether the clock is logical.
    pub fn is_logical(&self) -> bool {
        self.logical.is_some()
    }

    /// Milliseconds since the recorder opened, or the next logical tick.
    pub fn now_ms(&self) -> f64 {
        match &self.logical {
            Some(ticks) => (ticks.fetch_add(1, Ordering::Relaxed) + 1) as f64,
            None => super::millis(self.start.elapsed()),
        }
    }

    /// Reads the clock and writes the line `build` makes of it under one lock, so lines appear
    /// in the order of their times.
    pub fn record(&self, build: impl FnOnce(f64) -> RecordLine) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = serde_json::to_vec(&build(self.now_ms())).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.flush()
    }

    /// Writes one line with a single `write` call, unbuffered, so it reaches the file now.
    pub fn write(&self, line: &RecordLine) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&bytes)?;
        file.flush()
    }
}

/// A client's Socket.IO CONNECT frame with the values of its `auth` payload redacted (it often
/// carries a token); the keys stay, so the recording still shows what was sent. Other frames
/// are returned unchanged.
pub fn redacted_frame(packet: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let Some(rest) = packet.strip_prefix("40") else {
        return Cow::Borrowed(packet);
    };
    let Some(brace) = rest.find('{') else {
        return Cow::Borrowed(packet);
    };
    let Ok(serde_json::Value::Object(auth)) = serde_json::from_str(&rest[brace..]) else {
        return Cow::Borrowed(packet);
    };
    let redacted: serde_json::Map<String, serde_json::Value> = auth
        .into_iter()
        .map(|(k, _)| (k, serde_json::Value::String(REDACTED.into())))
        .collect();
    Cow::Owned(format!(
        "40{}{}",
        &rest[..brace],
        serde_json::Value::Object(redacted)
    ))
}

/// Query pairs with secrets redacted.
pub fn redacted_query(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let value = if k == "access_token" || k.eq_ignore_ascii_case("code") {
                REDACTED.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_secrets_are_redacted() {
        let q = redacted_query("EIO=4&access_token=secret&t=1");
        assert_eq!(q["access_token"], REDACTED);
        assert_eq!(q["EIO"], "4");
        let line = RecordLine::Frame {
            t: 1.5,
            hub: "chat".into(),
            connection_id: "c".into(),
            direction: Direction::In,
            packet: "42[\"a\"]".into(),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.starts_with("{\"type\":\"frame\""), "{text}");
        assert_eq!(serde_json::from_str::<RecordLine>(&text).unwrap(), line);
    }

    #[test]
    fn connect_auth_values_are_redacted() {
        assert_eq!(
            redacted_frame("40/chat,{\"token\":\"s3cret\",\"n\":1}"),
            "40/chat,{\"n\":\"<redacted>\",\"token\":\"<redacted>\"}"
        );
        assert_eq!(redacted_frame("40/chat,"), "40/chat,");
        assert_eq!(redacted_frame("42[\"a\",{\"b\":1}]"), "42[\"a\",{\"b\":1}]");
    }

    #[test]
    fn every_line_is_flushed_as_written() {
        let dir = std::env::temp_dir().join(format!("sio-emu-rec-{}", std::process::id()));
        let recorder = Recorder::open(&dir).unwrap();
        for i in 0..3 {
            recorder
                .write(&RecordLine::Closed {
                    t: i as f64,
                    hub: "h".into(),
                    connection_id: "c".into(),
                    reason: String::new(),
                })
                .unwrap();
            let text = std::fs::read_to_string(&dir).unwrap();
            assert_eq!(text.lines().count(), i + 1);
        }
        let _ = std::fs::remove_file(&dir);
    }
}
