//! The sizes of messages on the wire.

/// The largest request message DocumentService accepts (a document, a message of
/// an import).
pub const MAX_DECODING_MESSAGE_BYTES: usize = 16 << 20;
/// The largest request message the other services accept: a search, a schema. A
/// search of up to 1 MiB is always accepted.
pub const MAX_QUERY_MESSAGE_BYTES: usize = 4 << 20;
/// The largest response message sent (a page of up to 1000 documents).
pub const MAX_ENCODING_MESSAGE_BYTES: usize = 256 << 20;
