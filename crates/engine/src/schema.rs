//! Collection schemas: declared fields, their types and options, and the tantivy
//! schema built from them.

use std::collections::HashSet;

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions,
};

use crate::error::{EngineError, Result};
use crate::lang::query::Synonyms;
use crate::names::FieldName;
use crate::text::analysis::{Analyzer, Normalizer};

/// The internal tantivy field that holds the document id.
pub(crate) const ID_FIELD: &str = "_id";
/// The prefix of the internal raw shadow of a stemmed TEXT field.
const RAW_PREFIX: &str = "_raw_";
/// The prefix of the internal column of a normalized KEYWORD field's values as
/// written.
const WRITTEN_PREFIX: &str = "_written_";

/// The type of a declared field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Keyword,
    Integer,
    Float,
    Boolean,
    Timestamp,
}

impl FieldType {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "TEXT",
            FieldType::Keyword => "KEYWORD",
            FieldType::Integer => "INTEGER",
            FieldType::Float => "FLOAT",
            FieldType::Boolean => "BOOLEAN",
            FieldType::Timestamp => "TIMESTAMP",
        }
    }
}

/// A declared field as a client describes it, before validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    /// `None` for an unspecified type, which validation rejects.
    pub ty: Option<FieldType>,
    /// Empty means the type's default.
    pub analyzer: String,
    pub filterable: bool,
    pub sortable: bool,
    pub facetable: bool,
    /// 0 means 1.0.
    pub boost: f32,
    /// KEYWORD only; empty means none.
    pub normalizer: String,
}

/// A validated declared field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDef {
    pub name: FieldName,
    pub ty: FieldType,
    pub analyzer: Analyzer,
    pub filterable: bool,
    pub sortable: bool,
    pub facetable: bool,
    /// Always finite and > 0.
    pub boost: f32,
    /// [`Normalizer::None`] unless the field is KEYWORD.
    pub normalizer: Normalizer,
}

impl FieldDef {
    /// Whether tantivy keeps a columnar (fast) copy of the value, needed to sort,
    /// facet and range-filter.
    pub(crate) fn is_fast(&self) -> bool {
        self.ty != FieldType::Text && (self.sortable || self.facetable || self.filterable)
    }

    /// Turns the validated definition back into the spec a client sees.
    pub fn to_spec(&self) -> FieldSpec {
        FieldSpec {
            name: self.name.as_str().to_owned(),
            ty: Some(self.ty),
            analyzer: match self.ty {
                FieldType::Text | FieldType::Keyword => self.analyzer.name().to_owned(),
                _ => String::new(),
            },
            filterable: self.filterable,
            sortable: self.sortable,
            facetable: self.facetable,
            boost: self.boost,
            normalizer: self.normalizer.name().to_owned(),
        }
    }
}

/// The validated schema of a collection, with the tantivy schema built from it.
#[derive(Clone, Debug)]
pub struct CollectionSchema {
    fields: Vec<FieldDef>,
    tantivy: Schema,
    /// `tantivy_fields[i]` is the tantivy field of `fields[i]`.
    tantivy_fields: Vec<Field>,
    /// `raw_fields[i]`: for a TEXT field with a stemming analyzer, a shadow field
    /// indexed with the standard analyzer (words as written), for prefix and fuzzy
    /// terms; `None` when the field itself serves.
    raw_fields: Vec<Option<Field>>,
    /// `written_fields[i]`: for a normalized KEYWORD field, a column (not
    /// indexed) of its values as written, from which facets and suggestions
    /// take the spelling they show.
    written_fields: Vec<Option<Field>>,
    id_field: Field,
    synonyms: Synonyms,
}

/// The most fields a collection may declare.
pub const MAX_FIELDS: usize = 256;

impl CollectionSchema {
    /// Validates `specs`; errors name `fields[i].…`.
    pub fn new(specs: &[FieldSpec]) -> Result<Self> {
        if specs.len() > MAX_FIELDS {
            return Err(EngineError::invalid(
                "fields",
                format!("{} fields declared; the limit is {MAX_FIELDS}", specs.len()),
            ));
        }
        let mut seen = HashSet::new();
        let mut fields = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let def = validate_field(spec, &format!("fields[{i}]"))?;
            if !seen.insert(def.name.clone()) {
                return Err(EngineError::invalid(
                    format!("fields[{i}].name"),
                    format!("duplicate field name {:?}", spec.name),
                ));
            }
            fields.push(def);
        }
        Ok(Self::build(fields))
    }

    fn build(fields: Vec<FieldDef>) -> Self {
        let mut builder = Schema::builder();
        let id_field = builder.add_text_field(
            ID_FIELD,
            TextOptions::default()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("raw")
                        .set_index_option(IndexRecordOption::Basic),
                )
                .set_fast("raw"),
        );
        let tantivy_fields = fields
            .iter()
            .map(|def| add_tantivy_field(&mut builder, def))
            .collect();
        let raw_fields = fields
            .iter()
            .map(|def| {
                let stemmed = def.ty == FieldType::Text
                    && !matches!(def.analyzer, Analyzer::Standard | Analyzer::Keyword);
                stemmed.then(|| {
                    builder.add_text_field(
                        &format!("{RAW_PREFIX}{}", def.name),
                        TextOptions::default().set_indexing_options(
                            TextFieldIndexing::default()
                                .set_tokenizer(Analyzer::Standard.name())
                                .set_index_option(IndexRecordOption::WithFreqs),
                        ),
                    )
                })
            })
            .collect();
        let written_fields = fields
            .iter()
            .map(|def| {
                (def.normalizer != Normalizer::None).then(|| {
                    builder.add_text_field(
                        &format!("{WRITTEN_PREFIX}{}", def.name),
                        TextOptions::default().set_fast("raw"),
                    )
                })
            })
            .collect();
        CollectionSchema {
            fields,
            tantivy: builder.build(),
            tantivy_fields,
            raw_fields,
            written_fields,
            id_field,
            synonyms: Synonyms::default(),
        }
    }

    /// This schema with the synonym `sets` (see [`Synonyms::new`]).
    pub fn with_synonyms(mut self, sets: &[String]) -> Result<Self> {
        self.synonyms = Synonyms::new(sets)?;
        Ok(self)
    }

    /// The collection's synonyms.
    pub fn synonyms(&self) -> &Synonyms {
        &self.synonyms
    }

    /// The declared fields in declaration order.
    pub fn fields(&self) -> &[FieldDef] {
        &self.fields
    }

    /// A declared field by name, with its tantivy field.
    pub fn field(&self, name: &str) -> Option<(&FieldDef, Field)> {
        self.fields
            .iter()
            .position(|f| f.name.as_str() == name)
            .map(|i| (&self.fields[i], self.tantivy_fields[i]))
    }

    /// The field holding `field`'s words as written: its raw shadow, or itself.
    pub(crate) fn raw_field(&self, field: Field) -> Field {
        self.tantivy_fields
            .iter()
            .position(|f| *f == field)
            .and_then(|i| self.raw_fields[i])
            .unwrap_or(field)
    }

    /// Whether `field` is a declared KEYWORD field.
    pub(crate) fn is_keyword(&self, field: Field) -> bool {
        self.iter()
            .any(|(def, f)| f == field && def.ty == FieldType::Keyword)
    }

    /// The normalizer of the declared field `field` (none for other fields).
    pub(crate) fn normalizer(&self, field: Field) -> Normalizer {
        self.iter()
            .find(|(_, f)| *f == field)
            .map_or(Normalizer::None, |(def, _)| def.normalizer)
    }

    /// The column of `field`'s values as written, for a normalized KEYWORD field.
    pub(crate) fn written_field(&self, field: Field) -> Option<Field> {
        self.tantivy_fields
            .iter()
            .position(|f| *f == field)
            .and_then(|i| self.written_fields[i])
    }

    /// Declared fields with their tantivy fields, raw shadows and columns of
    /// values as written.
    pub(crate) fn iter_with_shadows(
        &self,
    ) -> impl Iterator<Item = (&FieldDef, Field, Option<Field>, Option<Field>)> {
        self.fields
            .iter()
            .zip(self.tantivy_fields.iter().copied())
            .zip(self.raw_fields.iter().copied())
            .zip(self.written_fields.iter().copied())
            .map(|(((def, field), raw), written)| (def, field, raw, written))
    }

    /// Declared fields with their tantivy fields.
    pub fn iter(&self) -> impl Iterator<Item = (&FieldDef, Field)> {
        self.fields.iter().zip(self.tantivy_fields.iter().copied())
    }

    pub(crate) fn tantivy(&self) -> &Schema {
        &self.tantivy
    }

    pub(crate) fn id_field(&self) -> Field {
        self.id_field
    }
}

fn validate_field(spec: &FieldSpec, path: &str) -> Result<FieldDef> {
    let name = FieldName::parse(&spec.name, &format!("{path}.name"))?;
    let ty = spec.ty.ok_or_else(|| {
        EngineError::invalid(
            format!("{path}.type"),
            format!(
                "field {:?}: a type is required (FIELD_TYPE_UNSPECIFIED)",
                spec.name
            ),
        )
    })?;
    let analyzer = match (ty, spec.analyzer.as_str()) {
        (FieldType::Text, "") => Analyzer::Standard,
        (FieldType::Text, name) => Analyzer::from_name(name).ok_or_else(|| {
            EngineError::invalid(
                format!("{path}.analyzer"),
                format!(
                    "field {:?}: unknown analyzer {name:?}; known: {}",
                    spec.name,
                    Analyzer::known_names()
                ),
            )
        })?,
        (FieldType::Keyword, "" | "keyword") => Analyzer::Keyword,
        (_, "") => Analyzer::Keyword,
        (ty, name) => {
            return Err(EngineError::invalid(
                format!("{path}.analyzer"),
                format!(
                    "field {:?}: an analyzer ({name:?}) applies only to TEXT fields, not {}",
                    spec.name,
                    ty.name()
                ),
            ));
        }
    };
    if ty == FieldType::Text && spec.sortable {
        return Err(EngineError::invalid(
            format!("{path}.sortable"),
            format!(
                "field {:?}: TEXT fields cannot be sortable; declare a KEYWORD field to sort on",
                spec.name
            ),
        ));
    }
    if ty == FieldType::Text && spec.facetable {
        return Err(EngineError::invalid(
            format!("{path}.facetable"),
            format!(
                "field {:?}: TEXT fields cannot be facetable; declare a KEYWORD field for facets",
                spec.name
            ),
        ));
    }
    let boost = match spec.boost {
        0.0 => 1.0,
        b if b.is_finite() && b > 0.0 => b,
        b => {
            return Err(EngineError::invalid(
                format!("{path}.boost"),
                format!(
                    "field {:?}: boost must be a positive finite number, not {b}",
                    spec.name
                ),
            ));
        }
    };
    let normalizer = Normalizer::from_name(&spec.normalizer).ok_or_else(|| {
        EngineError::invalid(
            format!("{path}.normalizer"),
            format!(
                "field {:?}: unknown normalizer {:?}; known: lowercase (or empty for none)",
                spec.name, spec.normalizer
            ),
        )
    })?;
    if normalizer != Normalizer::None && ty != FieldType::Keyword {
        return Err(EngineError::invalid(
            format!("{path}.normalizer"),
            format!(
                "field {:?}: a normalizer applies only to KEYWORD fields, not {} (TEXT fields take an analyzer)",
                spec.name,
                ty.name()
            ),
        ));
    }
    Ok(FieldDef {
        name,
        ty,
        analyzer,
        filterable: spec.filterable,
        sortable: spec.sortable,
        facetable: spec.facetable,
        boost,
        normalizer,
    })
}

fn add_tantivy_field(builder: &mut tantivy::schema::SchemaBuilder, def: &FieldDef) -> Field {
    let name = def.name.as_str();
    let fast = def.is_fast();
    match def.ty {
        FieldType::Text => builder.add_text_field(
            name,
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(def.analyzer.name())
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            ),
        ),
        FieldType::Keyword => {
            let tokenizer = def.normalizer.tokenizer();
            let mut options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::Basic),
            );
            if fast {
                options = options.set_fast(tokenizer);
            }
            builder.add_text_field(name, options)
        }
        FieldType::Integer => builder.add_i64_field(name, numeric_options(fast)),
        FieldType::Float => builder.add_f64_field(name, numeric_options(fast)),
        FieldType::Boolean => builder.add_bool_field(name, numeric_options(fast)),
        FieldType::Timestamp => {
            let mut options = DateOptions::default()
                .set_indexed()
                .set_precision(DateTimePrecision::Microseconds);
            if fast {
                options = options.set_fast();
            }
            builder.add_date_field(name, options)
        }
    }
}

fn numeric_options(fast: bool) -> NumericOptions {
    let options = NumericOptions::default().set_indexed();
    if fast { options.set_fast() } else { options }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, ty: Option<FieldType>) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty,
            analyzer: String::new(),
            filterable: false,
            sortable: false,
            facetable: false,
            boost: 0.0,
            normalizer: String::new(),
        }
    }

    fn error_field(specs: &[FieldSpec]) -> String {
        match CollectionSchema::new(specs) {
            Err(EngineError::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_typical_schema() {
        let mut date = spec("date", Some(FieldType::Timestamp));
        date.sortable = true;
        date.facetable = true;
        let mut body = spec("body", Some(FieldType::Text));
        body.analyzer = "english".into();
        let schema =
            CollectionSchema::new(&[spec("title", Some(FieldType::Text)), body, date]).unwrap();
        assert_eq!(schema.fields().len(), 3);
        assert_eq!(schema.fields()[0].boost, 1.0);
        assert_eq!(schema.fields()[1].analyzer, Analyzer::English);
        assert!(schema.field("date").unwrap().0.is_fast());
        assert!(schema.field("nope").is_none());
    }

    #[test]
    fn a_normalized_keyword_field_has_a_column_of_values_as_written() {
        let mut brand = spec("brand", Some(FieldType::Keyword));
        brand.facetable = true;
        brand.normalizer = "lowercase".into();
        let schema =
            CollectionSchema::new(&[spec("tags", Some(FieldType::Keyword)), brand]).unwrap();
        let (_, tags) = schema.field("tags").unwrap();
        let (def, field) = schema.field("brand").unwrap();
        assert_eq!(def.normalizer, Normalizer::Lowercase);
        assert_eq!(def.to_spec().normalizer, "lowercase");
        assert_eq!(schema.normalizer(field), Normalizer::Lowercase);
        assert_eq!(schema.normalizer(tags), Normalizer::None);
        assert!(schema.written_field(tags).is_none());
        let written = schema.written_field(field).unwrap();
        assert_eq!(schema.tantivy().get_field_name(written), "_written_brand");
        assert_eq!(Normalizer::Lowercase.apply("Café SONY"), "cafe sony");
        assert_eq!(Normalizer::None.apply("Café SONY"), "Café SONY");
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(error_field(&[spec("a", None)]), "fields[0].type");
        assert_eq!(
            error_field(&[
                spec("a", Some(FieldType::Text)),
                spec("a", Some(FieldType::Keyword))
            ]),
            "fields[1].name"
        );
        assert_eq!(
            error_field(&[spec("1a", Some(FieldType::Text))]),
            "fields[0].name"
        );
        let mut s = spec("t", Some(FieldType::Text));
        s.sortable = true;
        assert_eq!(error_field(&[s]), "fields[0].sortable");
        let mut s = spec("t", Some(FieldType::Text));
        s.analyzer = "klingon".into();
        assert_eq!(error_field(&[s]), "fields[0].analyzer");
        let mut s = spec("n", Some(FieldType::Integer));
        s.analyzer = "english".into();
        assert_eq!(error_field(&[s]), "fields[0].analyzer");
        let mut s = spec("n", Some(FieldType::Integer));
        s.boost = -1.0;
        assert_eq!(error_field(&[s]), "fields[0].boost");
        let mut s = spec("n", Some(FieldType::Integer));
        s.boost = f32::NAN;
        assert_eq!(error_field(&[s]), "fields[0].boost");
        let mut s = spec("t", Some(FieldType::Text));
        s.normalizer = "lowercase".into();
        assert_eq!(error_field(&[s]), "fields[0].normalizer");
        let mut s = spec("k", Some(FieldType::Keyword));
        s.normalizer = "Lowercase".into();
        assert_eq!(error_field(&[s]), "fields[0].normalizer");
    }
}
