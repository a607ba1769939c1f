//! Checksummed records in append-only files.
//!
//! A frame is `[MAGIC: u32][len: u32][crc32(len ++ payload): u32][payload]`, all
//! little-endian. The magic lets a reader that meets a bad frame look for valid
//! frames after it without computing a checksum at every byte: if one exists, the
//! damage is in the middle of the file (an error); if none does, the bad frame is
//! a torn tail left by a crash mid-write (cut it back).

/// Marks the start of every frame.
const MAGIC: u32 = 0x7e5a_1f0b;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 12;
/// The largest payload a frame may hold: a document is at most 16 MiB on the wire.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// Appends the frame of `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= MAX_PAYLOAD, "frame payload too large");
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// What [`next`] found at an offset.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    /// A valid frame's payload, and the offset after it.
    Frame(&'a [u8], usize),
    /// The end of the data.
    End,
    /// A bad frame with no valid frame after it: a torn tail.
    Torn,
    /// A bad frame followed by a valid one: damage in the middle.
    Corrupt,
}

/// Reads the frame at `offset` of `data`.
pub fn next(data: &[u8], offset: usize) -> Next<'_> {
    if offset >= data.len() {
        return Next::End;
    }
    match frame_at(data, offset) {
        Some((payload, end)) => Next::Frame(payload, end),
        None if (offset + 1..data.len()).any(|p| frame_at(data, p).is_some()) => Next::Corrupt,
        None => Next::Torn,
    }
}

/// The payload and end of a valid frame at exactly `offset`.
fn frame_at(data: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let header = data.get(offset..offset.checked_add(HEADER_LEN)?)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    if word(0) != MAGIC {
        return None;
    }
    let len = word(4) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let start = offset + HEADER_LEN;
    let payload = data.get(start..start.checked_add(len)?)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[4..8]);
    crc.update(payload);
    (crc.finalize() == word(8)).then_some((payload, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    fn read_all(data: &[u8]) -> (Vec<Vec<u8>>, Next<'_>) {
        let mut offset = 0;
        let mut out = Vec::new();
        loop {
            match next(data, offset) {
                Next::Frame(payload, end) => {
                    out.push(payload.to_vec());
                    offset = end;
                }
                other => return (out, other),
            }
        }
    }

    #[test]
    fn round_trip() {
        let data = frames(&[b"one", b"", b"three"]);
        let (got, end) = read_all(&data);
        assert_eq!(got, [b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(end, Next::End);
    }

    #[test]
    fn every_truncation_of_the_last_frame_is_a_torn_tail() {
        let data = frames(&[b"first", b"second record"]);
        let second = HEADER_LEN + 5;
        for cut in second + 1..data.len() {
            let (got, end) = read_all(&data[..cut]);
            assert_eq!(got, [b"first".to_vec()], "cut at {cut}");
            assert_eq!(end, Next::Torn, "cut at {cut}");
        }
        // Zeros after the last frame (a file extended but not written) are torn too.
        let mut zeros = data.clone();
        zeros.extend_from_slice(&[0; 100]);
        assert_eq!(read_all(&zeros).1, Next::Torn);
    }

    #[test]
    fn a_damaged_frame_before_a_good_one_is_corruption() {
        let data = frames(&[b"first", b"second", b"third"]);
        for i in 0..HEADER_LEN + 6 {
            let mut bad = data.clone();
            bad[HEADER_LEN + 5 + i] ^= 0x40;
            let (got, end) = read_all(&bad);
            assert_eq!(got, [b"first".to_vec()], "byte {i}");
            assert_eq!(end, Next::Corrupt, "byte {i}");
        }
        // A flipped bit in the last frame cannot be told from a torn write.
        let mut last = data.clone();
        *last.last_mut().unwrap() ^= 1;
        assert_eq!(read_all(&last).0.len(), 2);
        assert_eq!(read_all(&last).1, Next::Torn);
    }
}
