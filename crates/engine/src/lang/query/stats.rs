//! Ranking statistics shared by a collection's text fields.
//!
//! BM25 computed field by field gives a word the inverse document frequency of
//! that field alone: a word common in bodies but rare in titles scores as a rare
//! word wherever it sits in a title, and a title match outweighs what the rest
//! of the query says. Elasticsearch's `cross_fields` and BM25F answer this the same
//! way: a word's rarity is a property of the word in the collection, so its
//! document frequency is blended across the text fields — here, the largest of its
//! per-field frequencies. Term frequencies and length normalisation stay per field.
//!
//! On Cranfield this alone lifted nDCG@10 measurably (docs/decisions.md).

use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Explanation, Query};
use tantivy::schema::{Field, Type};
use tantivy::{DocAddress, Searcher, Term};

use crate::schema::{CollectionSchema, FieldType};

/// [`Bm25StatisticsProvider`] over a searcher whose text fields share their
/// document frequencies.
pub struct BlendedStatistics<'a> {
    searcher: &'a Searcher,
    text_fields: Vec<Field>,
}

impl<'a> BlendedStatistics<'a> {
    pub fn new(searcher: &'a Searcher, schema: &CollectionSchema) -> Self {
        let text_fields = schema
            .iter()
            .filter(|(def, _)| def.ty == FieldType::Text)
            .map(|(_, field)| field)
            .collect();
        BlendedStatistics {
            searcher,
            text_fields,
        }
    }

    /// Scoring enabled with these statistics.
    pub fn scoring(&self) -> EnableScoring<'_> {
        EnableScoring::enabled_from_statistics_provider(self, self.searcher)
    }

    /// The explanation of `address`'s score for `query` under these statistics.
    pub fn explain(&self, query: &dyn Query, address: DocAddress) -> tantivy::Result<Explanation> {
        let weight = query.weight(self.scoring())?;
        weight.explain(
            self.searcher.segment_reader(address.segment_ord),
            address.doc_id,
        )
    }
}

impl Bm25StatisticsProvider for BlendedStatistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        Bm25StatisticsProvider::total_num_tokens(self.searcher, field)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Bm25StatisticsProvider::total_num_docs(self.searcher)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let own = self.searcher.doc_freq(term)?;
        if term.typ() != Type::Str || !self.text_fields.contains(&term.field()) {
            return Ok(own);
        }
        let value = term.value();
        let Some(text) = value.as_str() else {
            return Ok(own);
        };
        let mut blended = own;
        for &field in &self.text_fields {
            if field != term.field() {
                blended = blended.max(
                    self.searcher
                        .doc_freq(&Term::from_field_text(field, text))?,
                );
            }
        }
        Ok(blended)
    }
}
