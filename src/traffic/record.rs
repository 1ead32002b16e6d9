//! The session recorder behind `serve --record <FILE>`: one JSON object per line, appended and
//! flushed as it happens, so a `kill -9` leaves a file that is valid up to its last complete
//! line. The first line of each run is a [`RecordLine::Header`] naming the format and version;
//! then handshakes, client frames, webhook exchanges and REST calls follow in the order they
//! happened. Access tokens, keys and signatures are never written.
//!
//! `sio-emu replay` reads these files back (see the README's REPLAY section for the format).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The `format` value of every session file.
pub const FORMAT: &str = "sio-emu-session";
/// The current format version; readers refuse newer major versions.
pub const VERSION: u32 = 1;
/// What replaces a secret in a recording.
pub const REDACTED: &str = "<redacted>";

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
}

/// Appends lines to a session file.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<File>,
    start: Instant,
}

impl Recorder {
    /// Opens (creating or appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Recorder> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder {
            file: Mutex::new(file),
            start: Instant::now(),
        })
    }

    /// Milliseconds since the recorder opened.
    pub fn now_ms(&self) -> f64 {
        super::millis(self.start.elapsed())
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
