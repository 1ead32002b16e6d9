//! Fuzzes the OData filter parser and evaluator: parsing never panics or recurses without bound,
//! errors point inside the text, accepted filters evaluate against sample connections (named,
//! anonymous, with and without groups), and their canonical `Display` form parses back to the
//! same filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_emu::service::odata::{Filter, FilterTarget, MAX_FILTER_LEN};

struct Conn {
    id: &'static str,
    user: Option<&'static str>,
    groups: &'static [&'static str],
}

impl FilterTarget for Conn {
    fn connection_id(&self) -> &str {
        self.id
    }
    fn user_id(&self) -> Option<&str> {
        self.user
    }
    fn in_group(&self, group: &str) -> bool {
        self.groups.contains(&group)
    }
    fn groups(&self) -> Vec<&str> {
        self.groups.to_vec()
    }
}

const CONNS: [Conn; 3] = [
    Conn {
        id: "c1",
        user: Some("alice"),
        groups: &["g1", "0~Lw~c29ja2V0MQ", "it's"],
    },
    Conn {
        id: "c2",
        user: None,
        groups: &[],
    },
    Conn {
        id: "héllo🎉",
        user: Some("  O'Brien  "),
        groups: &["0~L25z~"],
    },
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Filter::parse(text) {
        Ok(filter) => {
            let selected: Vec<bool> = CONNS.iter().map(|c| filter.matches(c)).collect();
            let _ = filter.group_literals();
            let printed = filter.to_string();
            // The canonical form spaces every operator, so it may outgrow the length limit.
            if printed.len() <= MAX_FILTER_LEN {
                let reparsed = Filter::parse(&printed).expect("canonical form must parse");
                assert_eq!(reparsed, filter, "canonical form {printed:?} of {text:?}");
                let again: Vec<bool> = CONNS.iter().map(|c| reparsed.matches(c)).collect();
                assert_eq!(again, selected);
            }
        }
        Err(e) => assert!(e.position <= text.chars().count(), "{e} for {text:?}"),
    }
});
