//! A collection's zstd dictionary.

use super::ZSTD_LEVEL;
use crate::error::{EngineError, Result};

/// A zstd dictionary trained on a collection's first documents. News-like
/// JSON documents of a few KB compress about a quarter smaller with one than
/// alone (see docs/decisions.md), since each document then needn't spell out the
/// field names and common words it shares with the others.
pub struct Dictionary {
    id: u32,
    bytes: Vec<u8>,
    pub(super) encoder: zstd::dict::EncoderDictionary<'static>,
    pub(super) decoder: zstd::dict::DecoderDictionary<'static>,
}

impl Dictionary {
    /// Trains a dictionary of at most `max_bytes` on `samples` (JSON texts),
    /// giving it `id` (zstd leaves ids below 32768 and from 2^31 reserved).
    pub fn train(samples: &[Vec<u8>], max_bytes: usize, id: u32) -> Result<Dictionary> {
        let mut bytes = zstd::dict::from_samples(samples, max_bytes)
            .map_err(|e| EngineError::Internal(format!("training a dictionary: {e}")))?;
        // A zstd dictionary starts with its magic number and its id.
        if bytes.len() < 8 || bytes[..4] != 0xEC30_A437u32.to_le_bytes() {
            return Err(EngineError::Internal(
                "training a dictionary: no dictionary header".into(),
            ));
        }
        bytes[4..8].copy_from_slice(&id.to_le_bytes());
        Dictionary::from_bytes(bytes)
    }

    /// A dictionary as [`Dictionary::bytes`] gave it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Dictionary> {
        let id = zstd::zstd_safe::get_dict_id_from_dict(&bytes)
            .ok_or_else(|| EngineError::DataDamaged("a dictionary without an id".into()))?
            .get();
        Ok(Dictionary {
            id,
            encoder: zstd::dict::EncoderDictionary::copy(&bytes, ZSTD_LEVEL),
            decoder: zstd::dict::DecoderDictionary::copy(&bytes),
            bytes,
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes this dictionary holds in memory: itself and zstd's prepared forms.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len() + self.encoder.as_cdict().sizeof() + self.decoder.as_ddict().sizeof()
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dictionary({}, {} bytes)", self.id, self.bytes.len())
    }
}
