//! The request languages: the free-text query syntax, AIP-160 filters and
//! `order_by`, with the cursor their parsers share.

pub(crate) mod cursor;
pub(crate) mod filter;
pub(crate) mod order;
pub(crate) mod query;
