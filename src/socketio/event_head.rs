//! The hot path's reader of an `EVENT` payload: it checks the JSON as [`super::packet::decode`]
//! would and takes out the event name, but builds no [`serde_json::Value`] and copies nothing
//! but the name. Each value is read through the same deserializer calls a `Value` makes
//! (numbers parsed, strings unescaped, nesting limited), and kept nowhere.
//!
//! It answers only the common case, a valid `EVENT` with a string or number name. Anything else
//! (a reserved or missing name, an error of any kind) returns `None`, and the caller runs the
//! full decoder, whose error texts are the ones clients and logs see.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, Deserialize, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::packet::{self, Header, PacketType, RESERVED_EVENTS};

/// The event name of a valid, non-binary `EVENT` whose header is `header`, or `None` when the
/// full decoder must decide (see the module's comment).
pub fn event_name(header: &Header<'_>) -> Option<String> {
    if header.kind != PacketType::Event || header.payload.is_empty() {
        return None;
    }
    let mut reader = serde_json::Deserializer::from_str(header.payload);
    let name = reader.deserialize_seq(EventArray).ok()??;
    reader.end().ok()?;
    Some(name)
}

/// Any JSON value, read as [`serde_json::Value`] reads it and then forgotten.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        // A key is a string: read it as one, as `Value` does, without keeping it.
        while map.next_key::<IgnoredKey>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(Checked)
    }
}

/// An object key, unescaped (so a bad escape fails here as it fails a `Value`) and dropped.
struct IgnoredKey;

impl<'de> Deserialize<'de> for IgnoredKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedVisitor).map(|_| IgnoredKey)
    }
}

/// `["name", args…]`: the name, or `None` when it is not one the fast path answers.
struct EventArray;

impl<'de> Visitor<'de> for EventArray {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        let name = seq.next_element_seed(NameSeed)?.flatten();
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(name.filter(|n| !RESERVED_EVENTS.contains(&n.as_str())))
    }
}

/// The array's first element: a string or a number becomes the name, anything else `None`.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(NameVisitor)
    }
}

struct NameVisitor;

impl NameVisitor {
    fn number(n: serde_json::Number) -> Option<String> {
        Some(packet::number_text(&n))
    }
}

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event name")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Self::number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Self::number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // `Value` refuses what is not finite the same way: serde_json never yields one here.
        Ok(serde_json::Number::from_f64(n).and_then(Self::number))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        CheckedVisitor.visit_seq(seq).map(|_| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        CheckedVisitor.visit_map(map).map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet::{Decoded, decode, into_event_name, parse_header};
    use proptest::prelude::*;

    /// What the full decoder says the name is, for a valid non-binary `EVENT`.
    fn full(text: &str) -> Option<String> {
        match decode(text) {
            Ok(Decoded::Complete(p)) if p.kind == PacketType::Event => into_event_name(p),
            _ => None,
        }
    }

    fn fast(text: &str) -> Option<String> {
        event_name(&parse_header(text).ok()?)
    }

    /// The fast path never accepts what the full decoder refuses, and names alike.
    fn agrees(text: &str) {
        let (f, d) = (fast(text), full(text));
        if f.is_some() {
            assert_eq!(f, d, "{text:?}");
        }
    }

    #[test]
    fn common_events_take_the_fast_path() {
        for (text, name) in [
            (r#"2["chat",{"a":[1,2.5,"x\n"]},null,true]"#, "chat"),
            (r#"2/admin,7["a\u00e9b"]"#, "aéb"),
            ("2[12]", "12"),
            ("2[1.0]", "1"),
            ("2[1.5]", "1.5"),
            ("2[-3]", "-3"),
        ] {
            assert_eq!(fast(text).as_deref(), Some(name), "{text}");
            assert_eq!(full(text).as_deref(), Some(name), "{text}");
        }
    }

    #[test]
    fn whatever_the_full_decoder_refuses_is_left_to_it() {
        for text in [
            "2",
            "2[]",
            r#"2["connect"]"#,
            r#"2["removeListener",1]"#,
            "2[true]",
            "2[null]",
            "2[[1]]",
            r#"2[{"a":1}]"#,
            r#"2{"a":1}"#,
            r#"2"x""#,
            r#"2["a",1e400]"#,
            r#"2["a","\ud800"]"#,
            r#"2["a",{"\ud800":1}]"#,
            r#"2["\ud800"]"#,
            r#"2["a"] x"#,
            r#"2["a",]"#,
            r#"2["a""#,
            r#"5-["a"]"#,
            r#"3["a"]"#,
        ] {
            assert_eq!(fast(text), None, "{text}");
        }
        let deep = format!("2[\"a\",{}{}]", "[".repeat(200), "]".repeat(200));
        assert_eq!(fast(&deep), None);
        assert_eq!(full(&deep), None);
    }

    proptest! {
        #[test]
        fn agrees_with_the_full_decoder(s in any::<String>()) {
            agrees(&format!("2{s}"));
            agrees(&format!("2[{s}"));
        }

        #[test]
        fn agrees_on_near_valid_events(
            name in r#"[a-z\\"u0-9.e+-]{0,8}"#,
            rest in r#"[\[\]{}:,"a-z0-9.e+\\-]{0,24}"#,
        ) {
            agrees(&format!(r#"2["{name}"{rest}"#));
            agrees(&format!("2[{name}{rest}"));
            agrees(&format!(r#"2["a",{rest}]"#));
        }
    }
}
