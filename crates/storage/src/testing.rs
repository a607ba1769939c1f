//! What the storage tests share.

use trove_engine::{CollectionSchema, FieldSpec, FieldType};

/// A schema of one TEXT field, `title`.
pub fn title_schema() -> CollectionSchema {
    let title = FieldSpec {
        name: "title".into(),
        ty: Some(FieldType::Text),
        analyzer: String::new(),
        filterable: false,
        sortable: false,
        facetable: false,
        boost: 0.0,
        normalizer: String::new(),
    };
    CollectionSchema::new(&[title]).unwrap()
}
