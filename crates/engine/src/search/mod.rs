//! Searching a collection: running a request on the search pool, facets,
//! highlighting, suggestions, and the pins page tokens hold on a view.

mod execute;
pub(crate) mod facet;
pub(crate) mod highlight;
pub(crate) mod page_token;
pub(crate) mod pins;
pub(crate) mod pool;
pub(crate) mod spelling;
pub(crate) mod suggest;

pub use execute::{
    DEFAULT_FRAGMENT_SIZE, DEFAULT_PAGE_SIZE, Explanation, Highlight, Hit, MAX_BATCH_SEARCHES,
    MAX_FRAGMENT_SIZE, MAX_FRAGMENTS, MAX_PAGE_SIZE, SearchRequest, SearchResults,
};
pub(crate) use execute::{search, search_batch};
