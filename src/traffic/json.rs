//! NDJSON rendering of [`TrafficEvent`]s: one object per line with a `type` tag and a `time`
//! field, for scripts and `--format json`.

use super::TrafficEvent;

/// Renders one event as a single JSON line.
pub fn render(event: &TrafficEvent) -> String {
    let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert(
            "time".into(),
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
    }
    value.to_string()
}

/// The event as a JSON object with its `time`, without the closing brace, so the inspector's
/// ring can append `seq`. Keys come in declaration order (the live log's are sorted).
pub fn open_object(event: &TrafficEvent) -> String {
    let mut text = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    text.pop();
    let time = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    if text.len() > 1 {
        text.push(',');
    }
    text.push_str("\"time\":\"");
    text.push_str(&time.to_string());
    text.push('"');
    text
}
