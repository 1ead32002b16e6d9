//! Paging of ListConnectionsInGroup (2024-12-01, docs/protocol.md §7.6): the `maxpagesize`, `top`
//! and `continuationToken` query parameters, which slice of the members one page holds, and the
//! `nextLink` that fetches the next one.
//!
//! Members are listed in connection-id order, and the continuation token names the last id a
//! page held and how many members the listing has returned so far (for `top`). A member that
//! joins or leaves between pages therefore never makes another one appear twice or go missing.
//! The token is opaque to callers; one sio-emu did not issue is a 400. [`super::operations`]
//! reads the members under the hub lock and hands them here; nothing here touches the service.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::RestError;
use super::request::Query;

/// Largest `maxpagesize` (docs/protocol.md §7.6), also the page size when it is absent.
pub const MAX_PAGE_SIZE: usize = 200;

/// Largest `top` (docs/protocol.md §7.6: a 32-bit signed integer).
pub const MAX_TOP: usize = i32::MAX as usize;

/// Where a listing stands: how many members it returned before this page, and the last id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    pub listed: usize,
    pub after: Option<String>,
}

/// The paging parameters of one ListConnectionsInGroup call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// `maxpagesize` as given.
    pub max_page_size: Option<usize>,
    /// `top` as given.
    pub top: Option<usize>,
    pub cursor: Cursor,
}

impl Paging {
    /// Reads and checks `maxpagesize` (1..=200), `top` (1..=2^31-1) and `continuationToken`.
    pub fn from_query(query: &Query) -> Result<Paging, RestError> {
        let cursor = match query.get("continuationToken") {
            None => Cursor::default(),
            Some(token) => decode(token).ok_or_else(|| RestError::InvalidParameter {
                name: "continuationToken",
                message: format!(
                    "continuationToken `{}` was not issued by this server; follow the `nextLink` \
                     of the previous page, or omit it to start from the first page",
                    crate::traffic::preview(token, 64)
                ),
            })?,
        };
        Ok(Paging {
            max_page_size: bounded(query, "maxpagesize", MAX_PAGE_SIZE)?,
            top: bounded(query, "top", MAX_TOP)?,
            cursor,
        })
    }

    /// Which of `ids` (sorted ascending) this page holds, as a range, and the cursor of the next
    /// page when more remain within `top`.
    pub fn page<'a>(&self, mut ids: impl Iterator<Item = &'a str> + Clone) -> Page {
        let skip = match &self.cursor.after {
            Some(after) => ids.clone().take_while(|id| *id <= after.as_str()).count(),
            None => 0,
        };
        let left_in_top = self
            .top
            .map_or(usize::MAX, |top| top.saturating_sub(self.cursor.listed));
        let size = self.max_page_size.unwrap_or(MAX_PAGE_SIZE).min(left_in_top);
        let remaining = ids.clone().count() - skip;
        let take = size.min(remaining);
        let more = remaining > take && left_in_top > take;
        let next = more.then(|| Cursor {
            listed: self.cursor.listed + take,
            after: ids.nth(skip + take - 1).map(str::to_owned),
        });
        Page {
            range: skip..skip + take,
            next,
        }
    }

    /// The query of the next page's link: the caller's `api-version`, `maxpagesize` and `top`
    /// with the new continuation token.
    pub fn next_query(&self, query: &Query, next: &Cursor) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if let Some(version) = query.get("api-version") {
            out.append_pair("api-version", version);
        }
        if let Some(size) = self.max_page_size {
            out.append_pair("maxpagesize", &size.to_string());
        }
        if let Some(top) = self.top {
            out.append_pair("top", &top.to_string());
        }
        out.append_pair("continuationToken", &encode(next));
        out.finish()
    }
}

/// One page: the members it holds (indices into the sorted list) and the next page's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub range: std::ops::Range<usize>,
    pub next: Option<Cursor>,
}

/// An integer query parameter from 1 to `max`, when present.
fn bounded(query: &Query, name: &'static str, max: usize) -> Result<Option<usize>, RestError> {
    let Some(raw) = query.get(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(RestError::InvalidParameter {
            name,
            message: format!(
                "{name} must be an integer from 1 to {max}; got `{}`",
                crate::traffic::preview(raw, 32)
            ),
        }),
    }
}

/// `<listed>.<base64url(last id)>`.
fn encode(cursor: &Cursor) -> String {
    let after = cursor.after.as_deref().unwrap_or("");
    format!("{}.{}", cursor.listed, URL_SAFE_NO_PAD.encode(after))
}

fn decode(token: &str) -> Option<Cursor> {
    let (listed, after) = token.split_once('.')?;
    let listed = listed.parse::<usize>().ok()?;
    let after = String::from_utf8(URL_SAFE_NO_PAD.decode(after).ok()?).ok()?;
    (!after.is_empty()).then_some(Cursor {
        listed,
        after: Some(after),
    })
}

#[cfg(test)]
mod tests;
