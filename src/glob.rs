//! The one glob matcher of the crate: `*` matches any run of characters (possibly empty), every
//! other character matches itself. Used by `--fault` rules (event names) and by `replay --ignore`
//! rules (event names, REST operations, query parameters).
//!
//! The pattern is cut at its `*`s into literal pieces. The first piece must start the text, the
//! last must end it, and the pieces between are found left to right, each at its leftmost place
//! after the previous one (leftmost is always safe: a later place leaves less text for the rest).
//! Each search starts where the previous match ended and a failed search ends the match, so the
//! text is scanned about once: the work is linear in the lengths of pattern and text (`str::find`
//! is a two-way search), whatever the number of `*`s. No recursion, no backtracking.

/// Whether `text` matches `pattern` (see the module docs).
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    // `split` always yields at least one piece.
    let head = pieces.next().unwrap_or("");
    let Some(rest) = text.strip_prefix(head) else {
        return false;
    };
    let mut middle: Vec<&str> = pieces.collect();
    let Some(tail) = middle.pop() else {
        // No `*`: the whole text is the literal.
        return rest.is_empty();
    };
    let Some(mut rest) = rest.strip_suffix(tail) else {
        return false;
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_and_stars() {
        assert!(matches("say", "say"));
        assert!(!matches("say", "sa"));
        assert!(!matches("connect", "connected"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("**", "x"));
        assert!(matches("chat*", "chat"));
        assert!(matches("chat*", "chatter"));
        assert!(!matches("chat*", "say"));
        assert!(matches("*ed", "connected"));
        assert!(matches("c*t*d", "connected"));
        assert!(matches("Send*", "SendToGroup"));
        assert!(matches("*Group*", "AddConnectionToGroup"));
        assert!(!matches("Send*", "AddToGroups"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn prefix_and_suffix_do_not_share_characters() {
        assert!(!matches("ab*ba", "aba"));
        assert!(matches("ab*ba", "abba"));
        assert!(!matches("a*a", "a"));
        assert!(matches("a*a", "aa"));
    }

    #[test]
    fn pieces_are_found_in_order() {
        assert!(!matches("*b*a*", "ab"));
        assert!(matches("*a*a*", "banana"));
        assert!(!matches("*a*a*a*a*", "banana"));
        assert!(matches("*ana*ana", "bananana"));
    }

    #[test]
    fn multibyte_characters_are_literals() {
        assert!(matches("é*ü", "éxü"));
        assert!(matches("*ü", "ü"));
        assert!(!matches("é*é", "é"));
    }

    /// The pattern that made the old recursive matcher exponential: 40 stars and a text of
    /// 10,000 characters that does not match. Bounded by construction (see the module docs):
    /// 40 searches over at most 10,000 characters each.
    #[test]
    fn many_stars_without_a_match() {
        let pattern = format!("{}b", "a*".repeat(40));
        let text = "a".repeat(10_000);
        assert!(!matches(&pattern, &text));
        let text = format!("{text}b");
        assert!(matches(&pattern, &text));
        let scattered = format!("{}*", "*a".repeat(40));
        assert!(!matches(&scattered, &"a".repeat(39)));
        assert!(matches(&scattered, &"a".repeat(40)));
    }

    mod properties {
        use super::matches;
        use proptest::prelude::*;

        /// A plain backtracking matcher over characters, as the reference.
        fn reference(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
                Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
            }
        }

        proptest! {
            #[test]
            fn agrees_with_backtracking(p in "[ab*]{0,8}", t in "[ab]{0,10}") {
                let (pc, tc): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
                prop_assert_eq!(matches(&p, &t), reference(&pc, &tc));
            }
        }
    }
}
