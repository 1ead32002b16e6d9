//! What `serve` prints once it listens, beside the live log's renderers: the pretty startup
//! banner, the NDJSON `ready` line, and the effective-settings block (at start in JSON mode and
//! after each reload). The values come ready-made from the caller ([`Banner`], labelled setting
//! lines); this module only lays them out.

use colored::Colorize;

/// The facts the banner and the `ready` line show.
pub struct Banner<'a> {
    /// `http://localhost:<port>`.
    pub endpoint: &'a str,
    /// The bound port (the one picked when `--port 0`).
    pub port: u16,
    /// The addresses actually listened on.
    pub addrs: Vec<String>,
    /// `Endpoint=…;AccessKey=…;Version=1.0;` with the primary key.
    pub connection_string: &'a str,
    /// The inspector's path under the endpoint.
    pub inspector_path: &'a str,
    /// The client path of the hub the example uses (`/clients/socketio/hubs/<hub>`).
    pub client_path: String,
    /// A client token for that hub.
    pub token: &'a str,
    /// Whether clients of undeclared hubs may come without a token.
    pub anonymous: bool,
    /// The declared hubs.
    pub hubs: Vec<String>,
    /// The default handler URL template.
    pub webhook: Option<String>,
    /// The effective settings as labelled lines, secrets masked.
    pub settings: Vec<(&'static str, String)>,
}

fn label(text: &str) -> String {
    format!("  {text:<12}").bold().to_string()
}

impl Banner<'_> {
    /// The pretty startup banner.
    pub fn pretty(&self) -> String {
        let endpoint = self.endpoint;
        let auth_line = if self.anonymous {
            "anonymous clients allowed; tokens, when given, are verified"
        } else {
            "clients need ?access_token= (mint one with `sio-emu token`), or start with --anonymous"
        };
        let mut lines = vec![
            format!(
                "{} {} — Azure Web PubSub for Socket.IO (Serverless) emulator",
                "sio-emu".bold(),
                env!("CARGO_PKG_VERSION")
            ),
            format!(
                "{}{}  ({})",
                label("listening"),
                endpoint.green(),
                self.addrs.join(", ")
            ),
            format!("{}{}", label("connection"), self.connection_string),
            format!(
                "{}{}{}",
                label("inspector"),
                endpoint.green(),
                self.inspector_path.green()
            ),
        ];
        for (name, text) in &self.settings {
            lines.push(format!("{}{}", label(name), text));
        }
        lines.extend([
            format!("{}{}", label("auth"), auth_line),
            label("client"),
            format!(
                "    const socket = io(\"{endpoint}/\", {{ path: \"{}\", query: {{ access_token: \"{}\" }} }});",
                self.client_path, self.token
            ),
            format!(
                "  {}",
                "(the token is valid for 1 hour; Ctrl-C stops and sends every disconnected event)"
                    .dimmed()
            ),
        ]);
        lines.join("\n")
    }

    /// The NDJSON `ready` line.
    pub fn ready(&self) -> String {
        serde_json::json!({
            "type": "ready",
            "endpoint": self.endpoint,
            "connectionString": self.connection_string,
            "port": self.port,
            "hubs": self.hubs,
            "webhook": self.webhook,
            "anonymous": self.anonymous,
            "clientPath": self.client_path,
            "inspector": format!("{}{}", self.endpoint, self.inspector_path),
            "token": self.token,
            "version": env!("CARGO_PKG_VERSION"),
        })
        .to_string()
    }
}

/// The effective settings under a heading, one labelled line each.
pub fn settings_pretty(heading: &str, settings: &[(&'static str, String)]) -> String {
    let mut lines = vec![format!("  {}", heading.bold())];
    for (name, text) in settings {
        lines.push(format!("  {}{}", format!("{name:<12}").bold(), text));
    }
    lines.join("\n")
}

/// The effective settings as one NDJSON `config` line.
pub fn settings_json(heading: &str, settings: serde_json::Value) -> String {
    let mut line = serde_json::json!({ "type": "config", "message": heading });
    line["config"] = settings;
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner() -> Banner<'static> {
        Banner {
            endpoint: "http://localhost:1234",
            port: 1234,
            addrs: vec!["127.0.0.1".into(), "::1".into()],
            connection_string: "Endpoint=http://localhost:1234;AccessKey=k;Version=1.0;",
            inspector_path: "/_emu/",
            client_path: "/clients/socketio/hubs/chat".into(),
            token: "tok",
            anonymous: false,
            hubs: vec!["chat".into()],
            webhook: Some("http://h/".into()),
            settings: vec![("keys", "****".into())],
        }
    }

    #[test]
    fn the_pretty_banner_shows_where_and_how_to_connect() {
        colored::control::set_override(false);
        let text = banner().pretty();
        assert!(text.contains("  listening   http://localhost:1234  (127.0.0.1, ::1)"));
        assert!(text.contains("  inspector   http://localhost:1234/_emu/"));
        assert!(text.contains("  keys        ****"));
        assert!(
            text.contains(
                "path: \"/clients/socketio/hubs/chat\", query: { access_token: \"tok\" }"
            )
        );
        assert!(text.contains("clients need ?access_token="));
    }

    #[test]
    fn the_ready_line_is_one_json_object() {
        let ready: serde_json::Value = serde_json::from_str(&banner().ready()).unwrap();
        assert_eq!(ready["type"], "ready");
        assert_eq!(ready["port"], 1234);
        assert_eq!(ready["inspector"], "http://localhost:1234/_emu/");
        assert_eq!(ready["hubs"][0], "chat");
        assert_eq!(ready["clientPath"], "/clients/socketio/hubs/chat");
    }

    #[test]
    fn settings_render_under_their_heading() {
        colored::control::set_override(false);
        let settings = [("rest", "Bearer token required".to_string())];
        assert_eq!(
            settings_pretty("effective configuration", &settings),
            "  effective configuration\n  rest        Bearer token required"
        );
        let line: serde_json::Value =
            serde_json::from_str(&settings_json("reloaded", serde_json::json!({"a": 1}))).unwrap();
        assert_eq!(line["type"], "config");
        assert_eq!(line["message"], "reloaded");
        assert_eq!(line["config"]["a"], 1);
    }
}
