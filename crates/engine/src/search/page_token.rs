//! Opaque, tamper-evident page tokens.
//!
//! A token carries a position and a fingerprint of what it pages through, signed
//! with a key the server draws at start-up: a forged or altered token, or one used
//! with another request, is refused. Tokens do not survive a restart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::{EngineError, Result};

const VERSION: u8 = 2;
/// version, offset, view id, fingerprint.
const PAYLOAD_BYTES: usize = 1 + 8 + 8 + 8;
const MAC_BYTES: usize = 16;

/// Where a page starts: the number of hits before it, in the pinned view `view`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub view: u64,
}

/// Signs and checks page tokens.
pub struct PageTokens {
    key: [u8; 32],
}

impl PageTokens {
    /// A signer with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        PageTokens { key }
    }

    /// The fingerprint of the parts of a request a token is bound to.
    pub fn fingerprint(parts: &[&str]) -> [u8; 8] {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_BYTES] {
        // Keyed hash over a fixed-length payload: a length-extension attack needs a
        // longer payload, which `decode` rejects.
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(payload)
            .finalize();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&digest[..MAC_BYTES]);
        out
    }

    /// A token for position `offset` in view `view` of the request with `fingerprint`.
    pub fn encode(&self, position: Position, fingerprint: [u8; 8]) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_BYTES + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&position.offset.to_le_bytes());
        bytes.extend_from_slice(&position.view.to_le_bytes());
        bytes.extend_from_slice(&fingerprint);
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position in `token`, which must have been issued for `fingerprint`.
    /// An empty token is `None`: the first page.
    pub fn decode(&self, token: &str, fingerprint: [u8; 8]) -> Result<Option<Position>> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid =
            |why: &str| EngineError::invalid("page_token", format!("invalid page token: {why}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| invalid("not a token this server issued"))?;
        if bytes.len() != PAYLOAD_BYTES + MAC_BYTES || bytes[0] != VERSION {
            return Err(invalid("not a token this server issued"));
        }
        let (payload, mac) = bytes.split_at(PAYLOAD_BYTES);
        // Compare without an early exit so timing does not reveal the MAC.
        let expected = self.mac(payload);
        if expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            // A token of an earlier run of the server (whose key is gone) and
            // an altered one look alike: neither can be served.
            return Err(EngineError::PageTokenExpired(
                "this page token cannot be served: the server has restarted since it was \
                 issued, or it was altered; start again from the first page"
                    .into(),
            ));
        }
        if payload[17..25] != fingerprint {
            return Err(invalid(
                "it belongs to a request with another collection, query, filter, order or ranking options",
            ));
        }
        let word = |range: std::ops::Range<usize>| {
            let mut out = [0u8; 8];
            out.copy_from_slice(&payload[range]);
            u64::from_le_bytes(out)
        };
        Ok(Some(Position {
            offset: word(1..9),
            view: word(9..17),
        }))
    }
}

impl Default for PageTokens {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let tokens = PageTokens::new();
        let fp = PageTokens::fingerprint(&["news", "taliban"]);
        let position = Position {
            offset: 20,
            view: 7,
        };
        let token = tokens.encode(position, fp);
        assert_eq!(tokens.decode(&token, fp).unwrap(), Some(position));
        assert_eq!(tokens.decode("", fp).unwrap(), None);
        let other = PageTokens::fingerprint(&["news", "kabul"]);
        assert!(tokens.decode(&token, other).is_err());
        assert!(PageTokens::new().decode(&token, fp).is_err());
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[1] ^= 1;
        assert!(tokens.decode(&URL_SAFE_NO_PAD.encode(&bytes), fp).is_err());
        assert!(tokens.decode("garbage!", fp).is_err());
        assert!(tokens.decode("AAAA", fp).is_err());
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            PageTokens::fingerprint(&["ab", "c"]),
            PageTokens::fingerprint(&["a", "bc"])
        );
    }
}
