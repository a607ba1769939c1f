//! Text analysis: the analyzers fields are indexed with, and stemming.

pub(crate) mod analysis;
pub(crate) mod replay;
pub(crate) mod stem;
pub(crate) mod words;
