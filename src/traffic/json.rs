//! NDJSON rendering of [`TrafficEvent`]s: one object per line with a `type` tag and a `time`
//! field, for scripts and `--format json`.

use std::time::SystemTime;

use serde_json::Value;

use super::TrafficEvent;

/// Renders one event as a single JSON line, timed now.
pub fn render(event: &TrafficEvent) -> String {
    object(event, SystemTime::now()).to_string()
}

/// The event as a JSON object with its `time` (`at`, RFC 3339 with milliseconds).
pub fn object(event: &TrafficEvent, at: SystemTime) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        let time = humantime::format_rfc3339_millis(at).to_string();
        map.insert("time".into(), time.into());
    }
    value
}
