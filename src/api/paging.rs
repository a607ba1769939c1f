//! Page tokens of the List RPCs: the last key of the page, base64-encoded. A List
//! walks keys in order, so the key alone says where to resume.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;

use super::status::invalid;

/// The key to resume after; `None` for an empty token.
pub fn decode_after(token: &str) -> Result<Option<String>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "page_token",
                "invalid page token: not one this server issued",
            )
        })
}

/// Given up to `limit + 1` items, keeps `limit` and returns the token for the
/// next page (empty when there is none).
pub fn next_token<T>(items: &mut Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> String {
    if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| URL_SAFE_NO_PAD.encode(key(last)))
            .unwrap_or_default()
    } else {
        String::new()
    }
}
