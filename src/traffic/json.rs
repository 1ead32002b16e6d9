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
