//! The layer check: reads every file under `src/`, collects the crate modules it names
//! (`use crate::…` lines and `crate::…` paths in code, comments and strings left out), and
//! fails with the offending `file:line` when a module names one it may not depend on.
//!
//! [`LAYERS`] lists every top-level module bottom-up with the modules it may use; each of those
//! must come earlier in the list, so the allowed graph has no circle by construction. The pure
//! codecs ([`CODECS`]) are checked as modules of their own: they may use nothing from the crate
//! but each other, and any layer may use them. [`KNOWN`] lists the edges still to be removed;
//! an edge there that no longer occurs fails too, so the list only shrinks.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module, bottom-up, with the modules it may import.
const LAYERS: &[(&str, &[&str])] = &[
    ("duration", &[]),
    ("glob", &[]),
    ("http", &[]),
    ("auth", &[]),
    ("traffic", &["duration"]),
    ("config", &["auth", "duration"]),
    (
        "upstream",
        &["auth", "config", "duration", "http", "traffic"],
    ),
    ("engineio", &["config", "duration", "http", "traffic"]),
    ("hooks", &["config", "upstream"]),
    (
        "service",
        &[
            "auth", "config", "duration", "engineio", "hooks", "traffic", "upstream",
        ],
    ),
    (
        "socketio",
        &[
            "auth", "config", "duration", "engineio", "hooks", "http", "service", "traffic",
            "upstream",
        ],
    ),
    (
        "rest",
        &[
            "auth", "config", "duration", "hooks", "http", "service", "traffic", "upstream",
        ],
    ),
    // Lint and fault are hooks: they implement `hooks` traits and name none of the layers
    // that call them (service, socketio, rest).
    (
        "lint",
        &["config", "engineio", "hooks", "traffic", "upstream"],
    ),
    (
        "fault",
        &["config", "duration", "glob", "hooks", "traffic", "upstream"],
    ),
    ("client", &[]),
    (
        "admin",
        &[
            "auth", "client", "config", "engineio", "fault", "hooks", "http", "service",
            "socketio", "traffic", "upstream",
        ],
    ),
    (
        "server",
        &[
            "admin", "auth", "config", "engineio", "http", "rest", "service", "socketio",
        ],
    ),
    (
        "builtin",
        &["auth", "config", "duration", "http", "service"],
    ),
    (
        "replay",
        &[
            "auth", "config", "duration", "glob", "hooks", "http", "lint", "rest", "server",
            "service", "traffic", "upstream",
        ],
    ),
    (
        "cli",
        &[
            "admin", "auth", "builtin", "client", "config", "duration", "fault", "hooks", "http",
            "lint", "replay", "server", "service", "traffic", "upstream",
        ],
    ),
];

/// Pure codecs (path prefix → node name): no I/O, no crate imports but each other, usable by
/// every layer.
const CODECS: &[(&str, &str)] = &[
    ("engineio::packet", "codec"),
    ("engineio::payload", "codec"),
    ("socketio::packet", "codec"),
    ("service::group", "codec"),
];

/// Edges that break the layering today and are to be removed (none left).
const KNOWN: &[(&str, &str)] = &[];

/// One place a module names another.
#[derive(Debug)]
struct Use {
    from: String,
    to: String,
    at: String,
}

#[test]
fn layers_point_one_way() {
    check_layer_list();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut uses = Vec::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let from = node_of_file(&rel);
        for (line, path) in crate_paths(&code_only(&text)) {
            let to = node_of_path(&path);
            if to != from {
                uses.push(Use {
                    from: from.clone(),
                    to,
                    at: format!("src/{rel}:{line}"),
                });
            }
        }
    }
    assert!(uses.len() > 50, "the scan found almost nothing: {uses:?}");
    let mut offending = Vec::new();
    let mut known_seen = BTreeSet::new();
    for u in &uses {
        if allowed(&u.from, &u.to) {
            continue;
        }
        if KNOWN.contains(&(u.from.as_str(), u.to.as_str())) {
            known_seen.insert((u.from.clone(), u.to.clone()));
            continue;
        }
        offending.push(format!("{}: {} -> {}", u.at, u.from, u.to));
    }
    assert!(
        offending.is_empty(),
        "imports against the layers:\n{}",
        offending.join("\n")
    );
    for (from, to) in KNOWN {
        assert!(
            known_seen.contains(&(from.to_string(), to.to_string())),
            "{from} -> {to} no longer occurs: remove it from KNOWN"
        );
    }
}

/// Every module appears once, and may use only modules listed before it.
fn check_layer_list() {
    let mut seen = BTreeSet::new();
    for (module, deps) in LAYERS {
        for dep in *deps {
            assert!(
                seen.contains(dep),
                "{module} may use {dep}, which is not below it"
            );
        }
        assert!(seen.insert(*module), "{module} is listed twice");
    }
}

fn allowed(from: &str, to: &str) -> bool {
    if to == "codec" {
        return true;
    }
    if from == "codec" {
        return false;
    }
    let layers: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    match layers.get(from) {
        Some(deps) => deps.contains(&to),
        None => panic!("module `{from}` is not in LAYERS: place it in the list"),
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `socketio/packet.rs` → `codec`; `rest/send.rs` → `rest`; `http.rs` → `http`.
fn node_of_file(rel: &str) -> String {
    let module = rel.trim_end_matches(".rs").replace('/', "::");
    node_of_path(&module)
}

/// `socketio::packet::Decoded` → `codec`; `service::group` → `service`.
fn node_of_path(path: &str) -> String {
    for (prefix, node) in CODECS {
        if path == *prefix || path.starts_with(&format!("{prefix}::")) {
            return (*node).to_owned();
        }
    }
    path.split("::").next().unwrap_or(path).to_owned()
}

/// The text with comments, string and char literals blanked out (line breaks kept).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            i + rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            i + 2 + find(&rest[2..], &['*', '/']).map_or(rest.len() - 2, |p| p + 2)
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            let mut close = vec!['"'];
            close.extend(std::iter::repeat_n('#', hashes));
            let body = 2 + hashes;
            i + body + find(&rest[body..], &close).map_or(rest.len() - body, |p| p + close.len())
        } else if rest[0] == '"' {
            i + 1 + string_end(&rest[1..])
        } else if rest[0] == '\'' && is_char_literal(rest) {
            i + 1 + string_end_with(&rest[1..], '\'')
        } else {
            out.push(rest[0]);
            i += 1;
            continue;
        };
        let end = end.max(i + 1).min(chars.len());
        out.extend(chars[i..end].iter().map(|&c| blank(c)));
        i = end;
    }
    out
}

/// At `r"` or `r#…#"` not inside an identifier: the number of `#`.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] != 'r' || (i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

fn find(hay: &[char], needle: &[char]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn string_end(rest: &[char]) -> usize {
    string_end_with(rest, '"')
}

/// Length up to and including the closing `quote`, skipping escapes.
fn string_end_with(rest: &[char], quote: char) -> usize {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    rest.len()
}

/// `'a'`, `'\n'`, `'\u{1F600}'` are char literals; `'a` in `&'a str` is a lifetime.
fn is_char_literal(rest: &[char]) -> bool {
    match rest.get(1) {
        Some('\\') => true,
        Some(_) => rest.get(2) == Some(&'\''),
        None => false,
    }
}

/// Every `crate::a::b` path (with `crate::{a, b::c}` groups expanded to their first segment
/// and beyond), with its 1-based line.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, _) in code.match_indices("crate::") {
        if code[..n].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let line = code[..n].matches('\n').count() + 1;
        let after = &code[n + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..closing_brace(group)];
            for item in top_level_items(inner) {
                found.push((line, path_of(item)));
            }
        } else {
            found.push((line, path_of(after)));
        }
    }
    found
}

fn closing_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn top_level_items(inner: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(inner[start..].trim());
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

/// The leading `a::b::c` of `text`, whitespace ignored.
fn path_of(text: &str) -> String {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(200)
        .collect();
    let end = compact
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(compact.len());
    compact[..end].trim_end_matches(':').to_owned()
}

#[test]
fn the_scanner_sees_what_rustc_sees() {
    let code = code_only(
        "use crate::{a::x, b};\n// crate::c\nlet s = \"crate::d\"; let l: &'a str = crate::e::f;\n\
         let c = '\"'; crate::g; /* crate::h */ r#\"crate::i\"#; mycrate::j;",
    );
    let paths: Vec<String> = crate_paths(&code).into_iter().map(|(_, p)| p).collect();
    assert_eq!(paths, ["a::x", "b", "e::f", "g"]);
    assert_eq!(node_of_path("socketio::packet::Decoded"), "codec");
    assert_eq!(node_of_path("socketio::webhook"), "socketio");
    assert_eq!(node_of_file("engineio/payload.rs"), "codec");
    assert!(!allowed("upstream", "service"));
    assert!(allowed("rest", "codec"));
    assert!(!allowed("codec", "service"));
    assert_eq!(node_of_path("service::group::namespace_group"), "codec");
    for hook in ["lint", "fault"] {
        for caller in ["service", "socketio", "rest"] {
            assert!(!allowed(caller, hook), "{caller} may name {hook}");
            assert!(!allowed(hook, caller), "{hook} may name {caller}");
        }
    }
}
