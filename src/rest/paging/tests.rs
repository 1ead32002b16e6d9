//! Unit tests of ListConnectionsInGroup paging: parameter ranges, page slices, `top` across
//! pages, and continuation tokens that survive members joining and leaving.

use super::*;

fn paging(query: &str) -> Result<Paging, RestError> {
    Paging::from_query(&Query::parse(Some(query)))
}

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Every page of `IDS` from `query`, following the cursors.
fn pages(query: &str, ids: &[&str]) -> Vec<Vec<String>> {
    let mut p = paging(query).unwrap();
    let mut out = Vec::new();
    loop {
        let page = p.page(ids.iter().copied());
        out.push(ids[page.range].iter().map(|s| s.to_string()).collect());
        match page.next {
            Some(next) => {
                let link = p.next_query(&Query::parse(Some(query)), &next);
                p = paging(&link).unwrap();
                assert_eq!(p.cursor, next, "the token round-trips");
            }
            None => return out,
        }
    }
}

#[test]
fn pages_of_max_page_size_then_the_rest() {
    assert_eq!(
        pages("maxpagesize=2", &IDS),
        [vec!["a", "b"], vec!["c", "d"], vec!["e"]]
    );
    assert_eq!(pages("", &IDS), [IDS.to_vec()]);
    assert_eq!(pages("maxpagesize=5", &IDS), [IDS.to_vec()]);
    assert_eq!(pages("", &[]), [Vec::<String>::new()]);
}

#[test]
fn top_bounds_the_whole_listing() {
    assert_eq!(
        pages("maxpagesize=2&top=3", &IDS),
        [vec!["a", "b"], vec!["c"]]
    );
    assert_eq!(
        pages("maxpagesize=2&top=4", &IDS),
        [vec!["a", "b"], vec!["c", "d"]]
    );
    assert_eq!(pages("top=9", &IDS), [IDS.to_vec()]);
}

#[test]
fn the_cursor_is_an_id_so_changes_between_pages_skip_nobody() {
    let p = paging("maxpagesize=2").unwrap();
    let next = p.page(IDS.iter().copied()).next.unwrap();
    let following = Paging {
        cursor: next,
        ..p.clone()
    };
    // "c" left and "aa" joined (before the cursor) between the pages.
    let now = ["a", "aa", "b", "d", "e"];
    let page = following.page(now.iter().copied());
    assert_eq!(&now[page.range], ["d", "e"]);
    assert_eq!(page.next, None);
}

#[test]
fn parameters_out_of_range_are_400() {
    for bad in [
        "maxpagesize=0",
        "maxpagesize=201",
        "maxpagesize=x",
        "top=0",
        "top=2147483648",
        "continuationToken=x",
        "continuationToken=1.",
        "continuationToken=one.YQ",
    ] {
        let error = paging(bad).unwrap_err();
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST, "{bad}");
    }
    let ok = paging("maxpagesize=200&top=2147483647&continuationToken=3.YQ").unwrap();
    assert_eq!(ok.max_page_size, Some(200));
    assert_eq!(ok.top, Some(MAX_TOP));
    assert_eq!(
        ok.cursor,
        Cursor {
            listed: 3,
            after: Some("a".into())
        }
    );
}
