//! Which segments tantivy merges in the background.
//!
//! tantivy's `LogMergePolicy` groups segments into levels by the logarithm of
//! their size and merges a level once it holds 8 segments, but counts every
//! segment under 10,000 documents as 10,000 (`min_layer_size`), so that small
//! segments do not make many levels. Writes that wait to be searchable commit a
//! segment of a few documents each. With that floor they all share one level
//! with the segment their predecessors were merged into, which is then merged
//! again with every 7 new ones: a stream of single-document writes rewrites
//! that segment, up to the floor's size, every 8 writes (in a profile of such
//! writes, merging was most of the server's CPU; docs/decisions.md).
//!
//! [`SmallFirst`] keeps tantivy's policy for segments of at least
//! [`SMALL_SEGMENT_DOCS`] documents and merges the smaller ones among
//! themselves, on levels a factor of 8 apart with no floor: 8 segments of one
//! document make one of 8, 8 of those one of 64, and so on, so a document is
//! rewritten about once per level on its way up, and the small segments stay
//! few (at most 7 a level, 3 levels under 100 documents). Past 100 documents a
//! segment joins tantivy's levels, where the floor still holds, but it is then
//! merged with the others every 8 segments of its own size, not every 8 writes.
//!
//! The threshold is low on purpose: an import commits segments of hundreds to
//! thousands of documents, and with a threshold of 1,000 those under it merged
//! apart from the rest, which changed when merges ended and left the server
//! measurably larger after an import (docs/decisions.md).
//!
//! Written here rather than taken from a library: `MergePolicy` is tantivy's
//! extension point for exactly this, and its one policy has the floor.

use tantivy::index::SegmentMeta;
use tantivy::indexer::{LogMergePolicy, MergeCandidate, MergePolicy};

/// Segments with fewer documents are merged among themselves.
pub const SMALL_SEGMENT_DOCS: u32 = 100;

/// Levels of small segments: a factor of 2^3 apart.
const SMALL_LEVEL_LOG2: f64 = 3.0;

/// tantivy's merge policy for large segments; small ones merged on their own.
#[derive(Debug)]
pub struct SmallFirst {
    small: LogMergePolicy,
    large: LogMergePolicy,
}

impl Default for SmallFirst {
    fn default() -> Self {
        let mut small = LogMergePolicy::default();
        small.set_min_layer_size(1);
        small.set_level_log_size(SMALL_LEVEL_LOG2);
        SmallFirst {
            small,
            large: LogMergePolicy::default(),
        }
    }
}

impl MergePolicy for SmallFirst {
    fn compute_merge_candidates(&self, segments: &[SegmentMeta]) -> Vec<MergeCandidate> {
        let (small, large): (Vec<SegmentMeta>, Vec<SegmentMeta>) = segments
            .iter()
            .cloned()
            .partition(|segment| segment.max_doc() < SMALL_SEGMENT_DOCS);
        let mut candidates = self.small.compute_merge_candidates(&small);
        candidates.extend(self.large.compute_merge_candidates(&large));
        candidates
    }
}

#[cfg(test)]
mod tests {
    use tantivy::index::SegmentId;
    use tantivy::indexer::MergePolicy;

    use super::*;

    fn segments(sizes: &[u32]) -> Vec<SegmentMeta> {
        let index = tantivy::Index::create_in_ram(tantivy::schema::Schema::builder().build());
        sizes
            .iter()
            .map(|&max_doc| index.new_segment_meta(SegmentId::generate_random(), max_doc))
            .collect()
    }

    /// The merges a policy asks for, as the sizes of the segments in each.
    fn merged_sizes(policy: &dyn MergePolicy, metas: &[SegmentMeta]) -> Vec<Vec<u32>> {
        let mut merges: Vec<Vec<u32>> = policy
            .compute_merge_candidates(metas)
            .into_iter()
            .map(|candidate| {
                let mut sizes: Vec<u32> = candidate
                    .0
                    .iter()
                    .map(|id| metas.iter().find(|m| m.id() == *id).unwrap().max_doc())
                    .collect();
                sizes.sort_unstable();
                sizes
            })
            .collect();
        merges.sort();
        merges
    }

    #[test]
    fn small_segments_are_merged_among_themselves() {
        let policy = SmallFirst::default();
        // Seven one-document segments beside a segment of 500: tantivy's policy
        // merges all eight; this one waits for an eighth small one.
        let metas = segments(&[30_000, 20_000, 500, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(
            merged_sizes(&LogMergePolicy::default(), &metas),
            vec![vec![1, 1, 1, 1, 1, 1, 1, 500]]
        );
        assert!(merged_sizes(&policy, &metas).is_empty());

        let metas = segments(&[30_000, 500, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(merged_sizes(&policy, &metas), vec![vec![1; 8]]);
        // Segments of 8 merge with those within a factor of 8 below them.
        let metas = segments(&[500, 8, 8, 8, 8, 8, 8, 8, 8, 1]);
        assert_eq!(
            merged_sizes(&policy, &metas),
            vec![vec![1, 8, 8, 8, 8, 8, 8, 8, 8]]
        );
    }

    #[test]
    fn large_segments_keep_tantivys_policy() {
        let policy = SmallFirst::default();
        let metas = segments(&[3_000, 3_000, 2_000, 1_500, 1_200, 500, 120, 100, 99]);
        assert_eq!(
            merged_sizes(&policy, &metas),
            vec![vec![100, 120, 500, 1_200, 1_500, 2_000, 3_000, 3_000]]
        );
    }
}
