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
//! The policy also records the segments it hands to merges ([`InMerge`]): an
//! explicit merge (the idle merge) must not take a segment a background merge
//! holds, since tantivy runs both, and the one that ends second fails and
//! leaves its output and its inputs in the directory until the next commit.
//!
//! Written here rather than taken from a library: `MergePolicy` is tantivy's
//! extension point for exactly this, and its one policy has the floor.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::index::{SegmentId, SegmentMeta};
use tantivy::indexer::{LogMergePolicy, MergeCandidate, MergePolicy};

/// Segments with fewer documents are merged among themselves.
pub const SMALL_SEGMENT_DOCS: u32 = 100;

/// Levels of small segments: a factor of 2^3 apart.
const SMALL_LEVEL_LOG2: f64 = 3.0;

/// The segments a writer's merge policy has handed to background merges that
/// may not have ended.
///
/// tantivy starts a merge for every candidate its policy returns and offers the
/// policy only segments that no merge holds. So a segment offered is in no
/// merge, and one returned in a candidate is in a merge until it is offered
/// again or leaves the index (the merge that took it ended).
#[derive(Debug, Default)]
pub struct InMerge(Mutex<HashSet<SegmentId>>);

impl InMerge {
    /// Whether a background merge may hold one of `segments`; forgets the
    /// segments recorded that are not among them (merged away).
    pub fn holds_any(&self, segments: &[SegmentMeta]) -> bool {
        let mut held = self.0.lock();
        let current: HashSet<SegmentId> = segments.iter().map(|s| s.id()).collect();
        held.retain(|id| current.contains(id));
        !held.is_empty()
    }

    /// Records `segments` as held by a merge (tests).
    #[cfg(test)]
    pub fn hold(&self, segments: &[SegmentId]) {
        self.0.lock().extend(segments.iter().copied());
    }
}

/// tantivy's merge policy for large segments; small ones merged on their own.
#[derive(Debug)]
pub struct SmallFirst {
    small: LogMergePolicy,
    large: LogMergePolicy,
    in_merge: Arc<InMerge>,
}

impl Default for SmallFirst {
    fn default() -> Self {
        SmallFirst::recording(Arc::default())
    }
}

impl SmallFirst {
    /// The policy, recording the segments it hands to merges in `in_merge`.
    pub fn recording(in_merge: Arc<InMerge>) -> Self {
        let mut small = LogMergePolicy::default();
        small.set_min_layer_size(1);
        small.set_level_log_size(SMALL_LEVEL_LOG2);
        SmallFirst {
            small,
            large: LogMergePolicy::default(),
            in_merge,
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
        let mut held = self.in_merge.0.lock();
        for segment in segments {
            held.remove(&segment.id());
        }
        for candidate in &candidates {
            held.extend(candidate.0.iter().copied());
            if tracing::enabled!(tracing::Level::DEBUG) {
                let docs: Vec<u32> = segments
                    .iter()
                    .filter(|segment| candidate.0.contains(&segment.id()))
                    .map(SegmentMeta::max_doc)
                    .collect();
                tracing::debug!(?docs, "merge started");
            }
        }
        candidates
    }
}

/// The most documents a merge started on an idle collection produces.
pub const IDLE_MERGE_MAX_DOCS: u32 = 100_000;

/// The segments to merge into one once a collection is idle: every segment,
/// less those that would take the result over [`IDLE_MERGE_MAX_DOCS`] and
/// those more than twice as large as all the rest together (largest first);
/// empty when fewer than two remain.
///
/// An import commits two segments (one per indexing thread) every time the
/// writes waiting on it commit, and tantivy's levels merge only eight of a
/// size, so an import of tens of thousands of documents leaves several
/// segments that each search then visits: every term looked up and every
/// scorer built once per segment. Since a segment is merged only with at
/// least half as many documents as it holds, each merge makes a document's
/// segment at least half as large again, and a document is rewritten a
/// logarithmic number of times; a large segment beside a few new documents is
/// left alone.
pub fn idle_merge_candidates(segments: &[SegmentMeta]) -> Vec<SegmentId> {
    let mut by_size: Vec<&SegmentMeta> = segments.iter().collect();
    by_size.sort_by_key(|segment| std::cmp::Reverse(segment.max_doc()));
    let mut total: u64 = by_size.iter().map(|s| u64::from(s.max_doc())).sum();
    let mut first = 0;
    while by_size.len() - first >= 2 {
        let largest = u64::from(by_size[first].max_doc());
        if total <= u64::from(IDLE_MERGE_MAX_DOCS) && largest <= 2 * (total - largest) {
            return by_size[first..].iter().map(|s| s.id()).collect();
        }
        total -= largest;
        first += 1;
    }
    Vec::new()
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

    fn idle_merged_sizes(sizes: &[u32]) -> Vec<u32> {
        let metas = segments(sizes);
        let mut merged: Vec<u32> = idle_merge_candidates(&metas)
            .iter()
            .map(|id| metas.iter().find(|m| m.id() == *id).unwrap().max_doc())
            .collect();
        merged.sort_unstable();
        merged
    }

    #[test]
    fn an_idle_collection_merges_comparable_segments_within_the_cap() {
        // An import's segments, a pair per commit: all merged.
        assert_eq!(
            idle_merged_sizes(&[1, 2_000, 2_100, 4_000, 4_100, 300, 400]),
            vec![1, 300, 400, 2_000, 2_100, 4_000, 4_100]
        );
        // A segment more than twice the rest together is left as it is.
        assert!(idle_merged_sizes(&[50_000, 1]).is_empty());
        assert!(idle_merged_sizes(&[41, 20]).is_empty());
        assert_eq!(idle_merged_sizes(&[40, 20]), vec![20, 40]);
        assert_eq!(idle_merged_sizes(&[50_000, 20, 30]), vec![20, 30]);
        // Nothing to merge with one segment or none.
        assert!(idle_merged_sizes(&[7]).is_empty());
        assert!(idle_merged_sizes(&[]).is_empty());
        // The result stays within the cap: the largest segments stay apart.
        let half = IDLE_MERGE_MAX_DOCS / 2;
        assert_eq!(idle_merged_sizes(&[half, half, half, 10, 10]), vec![10, 10]);
        assert_eq!(
            idle_merged_sizes(&[half, half - 10, 5, 5]),
            vec![5, 5, half - 10, half]
        );
    }

    #[test]
    fn the_policy_records_the_segments_it_hands_to_merges() {
        let in_merge = Arc::new(InMerge::default());
        let policy = SmallFirst::recording(in_merge.clone());
        let metas = segments(&[30_000, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(merged_sizes(&policy, &metas), vec![vec![1; 8]]);
        assert!(in_merge.holds_any(&metas));
        assert!(
            !in_merge.holds_any(&metas[..1]),
            "the large one is in no merge"
        );
        // The merge ended: its segments left the index.
        assert!(!in_merge.holds_any(&metas));

        assert_eq!(merged_sizes(&policy, &metas).len(), 1);
        // Offered again: tantivy offers only segments no merge holds.
        assert!(merged_sizes(&policy, &metas[..2]).is_empty());
        assert!(
            in_merge.holds_any(&metas),
            "the seven not offered are still held"
        );
        assert!(!in_merge.holds_any(&metas[..2]));
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
