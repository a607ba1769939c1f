use std::sync::Arc;

use serde_json::{Value, json};

use super::body::Body;
use super::*;
use crate::error::EngineError;
use crate::names::DocId;
use crate::schema::{CollectionSchema, FieldSpec, FieldType};

fn schema() -> CollectionSchema {
    let spec = |name: &str, ty| FieldSpec {
        name: name.into(),
        ty: Some(ty),
        analyzer: String::new(),
        filterable: true,
        sortable: false,
        facetable: false,
        boost: 0.0,
        normalizer: String::new(),
    };
    CollectionSchema::new(&[
        spec("title", FieldType::Text),
        spec("tags", FieldType::Keyword),
        spec("n", FieldType::Integer),
        spec("x", FieldType::Float),
        spec("b", FieldType::Boolean),
        spec("date", FieldType::Timestamp),
    ])
    .unwrap()
}

fn check(fields: serde_json::Value, expected: Result<serde_json::Value, &str>) {
    let mut fields = fields.as_object().unwrap().clone();
    let id = DocId::parse("d", "id").unwrap();
    match (prepare(&schema(), &id, &mut fields), expected) {
        (Ok(_), Ok(want)) => assert_eq!(Value::Object(fields), want),
        (Err(EngineError::InvalidArgument { field, .. }), Err(want)) => assert_eq!(field, want),
        (got, want) => panic!("got {got:?}, want {want:?}"),
    }
}

#[test]
fn values_are_checked_and_normalised() {
    check(
        json!({"title": "t", "tags": ["a", "b"], "n": 3.0, "x": 1.5, "b": true, "extra": {"any": [1]}}),
        Ok(
            json!({"title": "t", "tags": ["a", "b"], "n": 3, "x": 1.5, "b": true, "extra": {"any": [1]}}),
        ),
    );
    check(json!({"tags": "one"}), Ok(json!({"tags": "one"})));
    check(
        json!({"date": "2021-08-07"}),
        Ok(json!({"date": "2021-08-07T00:00:00Z"})),
    );
    check(
        json!({"date": "2021-08-07T10:00:00.1234567+02:00"}),
        Ok(json!({"date": "2021-08-07T08:00:00.123456Z"})),
    );
    check(json!({"n": null}), Ok(json!({"n": null})));
    check(
        json!({"n": 9007199254740992i64}),
        Ok(json!({"n": 9007199254740992i64})),
    );
}

#[test]
fn wrong_types_name_the_field() {
    check(json!({"title": 1}), Err("fields.title"));
    check(json!({"tags": ["a", 1]}), Err("fields.tags"));
    check(json!({"n": 1.5}), Err("fields.n"));
    check(json!({"n": 9007199254740993i64}), Err("fields.n"));
    check(json!({"n": 1e300}), Err("fields.n"));
    check(json!({"n": "1"}), Err("fields.n"));
    check(json!({"x": "1.5"}), Err("fields.x"));
    check(json!({"b": "true"}), Err("fields.b"));
    check(json!({"date": "yesterday"}), Err("fields.date"));
    check(json!({"date": "2021-02-30"}), Err("fields.date"));
    check(json!({"title": ["a"]}), Err("fields.title"));
}

#[test]
fn stored_doc_round_trips() {
    let fields = json!({"title": "hello", "n": 1})
        .as_object()
        .unwrap()
        .clone();
    let stored = StoredDoc::new(&fields, 2, 10, 20, None).unwrap();
    assert_eq!(stored.fields().unwrap(), fields);
    assert!(stored.memory_bytes() > 0);
}

#[test]
fn a_dictionary_compresses_and_is_required_to_read_back() {
    let fields = |i: usize| {
        json!({"title": format!("story {i} about the harbour"), "body": format!("the harbour board met on day {i} and the ferries ran late again")})
            .as_object()
            .unwrap()
            .clone()
    };
    let samples: Vec<Vec<u8>> = (0..1000)
        .map(|i| serde_json::to_vec(&fields(i)).unwrap())
        .collect();
    let dictionary = Arc::new(Dictionary::train(&samples, 16 << 10, 40_000).unwrap());
    assert_eq!(dictionary.id(), 40_000);
    assert!(dictionary.memory_bytes() > dictionary.bytes().len());
    let again = Dictionary::from_bytes(dictionary.bytes().to_vec()).unwrap();
    assert_eq!(again.id(), 40_000);

    let plain = StoredDoc::new(&fields(7), 1, 0, 0, None).unwrap();
    let packed = StoredDoc::new(&fields(7), 1, 0, 0, Some(&dictionary)).unwrap();
    assert!(packed.body().len() < plain.body().len());
    assert_eq!(packed.fields().unwrap(), fields(7));

    // Read back from its parts: the body names the dictionary it needs.
    let found = |id: u32| (id == 40_000).then(|| dictionary.clone());
    let back = StoredDoc::from_parts(1, 0, 0, packed.body().to_vec(), found).unwrap();
    assert_eq!(back.fields().unwrap(), fields(7));
    let missing = StoredDoc::from_parts(1, 0, 0, packed.body().to_vec(), |_| None);
    assert!(matches!(missing, Err(EngineError::DataDamaged(_))));
    let no_need = StoredDoc::from_parts(1, 0, 0, plain.body().to_vec(), |_| None).unwrap();
    assert_eq!(no_need.fields().unwrap(), fields(7));

    let unpacked = packed.without_dictionary().unwrap();
    let alone = StoredDoc::from_parts(1, 0, 0, unpacked.body().to_vec(), |_| None).unwrap();
    assert_eq!(alone.fields().unwrap(), fields(7));
}

#[test]
fn a_body_holds_its_bytes() {
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let body = Body::copy_of(&bytes);
    let copy = body.clone();
    drop(body);
    assert_eq!(&*copy, bytes.as_slice());
    assert!(Body::copy_of(&[]).is_empty());
}
