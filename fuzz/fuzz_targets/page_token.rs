//! The page token parser on arbitrary text (see `trove::engine::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        trove::engine::fuzz::page_token(text);
    }
});
