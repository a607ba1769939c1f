//! Starting a server on port 0 and connecting clients to it.

use std::path::PathBuf;

use serde_json::json;
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::api::pb::document_service_client::DocumentServiceClient;
use trove::api::pb::search_service_client::SearchServiceClient;
use trove::api::pb::{self, Collection, Field, FieldType};
use trove::config::Config;

/// A running server and clients connected to it. Dropping it shuts the server down.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    pub collections: CollectionServiceClient<Channel>,
    pub documents: DocumentServiceClient<Channel>,
    pub search: SearchServiceClient<Channel>,
    pub health: HealthClient<Channel>,
    engine: std::sync::Arc<trove::engine::Engine>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// A server with no seeds.
    pub async fn start() -> Server {
        Self::start_with(Config::for_tests()).await
    }

    /// A server with the project's seeds loaded.
    pub async fn start_seeded() -> Server {
        let mut config = Config::for_tests();
        config.no_seeds = false;
        config.seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
        Self::start_with(config).await
    }

    pub async fn start_with(config: Config) -> Server {
        let mut server = Self::launch(config).await;
        server.wait_serving().await;
        server
    }

    /// Starts a server without waiting for start-up to finish.
    pub async fn launch(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let engine = trove::server::engine_for(&config);
        let task = tokio::spawn(trove::server::serve(
            engine.clone(),
            config,
            listener,
            async {
                let _ = rx.await;
            },
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let health = HealthClient::new(channel.clone());
        Server {
            addr,
            collections: CollectionServiceClient::new(channel.clone()),
            documents: DocumentServiceClient::new(channel.clone()),
            search: SearchServiceClient::new(channel.clone()),
            health,
            channel,
            engine,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The health status of `service` (`""` for the whole server).
    pub async fn health_of(&mut self, service: &str) -> i32 {
        self.health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// Waits until start-up is done: health says SERVING (a watch, not a sleep).
    pub async fn wait_serving(&mut self) {
        let mut watch = self
            .health
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(status) = watch.message().await.unwrap() {
            if status.status == ServingStatus::Serving as i32 {
                return;
            }
        }
    }

    /// Shuts the server down and waits for it to stop.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// How many search snapshots page tokens pin now.
    pub fn pinned_snapshot_count(&self) -> usize {
        self.engine.pinned_views()
    }

    /// Creates collection `name` with the test schema (see [`test_fields`]).
    pub async fn create_test_collection(&mut self, name: &str) -> Collection {
        self.collections
            .create_collection(pb::CreateCollectionRequest {
                collection: Some(Collection {
                    name: name.into(),
                    fields: test_fields(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Creates a document and returns it.
    pub async fn put(
        &mut self,
        collection: &str,
        id: &str,
        fields: serde_json::Value,
    ) -> pb::Document {
        self.documents
            .create_document(pb::CreateDocumentRequest {
                collection: collection.into(),
                document: Some(doc(id, fields)),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Runs a search, panicking on error.
    pub async fn find(&mut self, request: pb::SearchRequest) -> pb::SearchResponse {
        self.search.search(request).await.unwrap().into_inner()
    }

    /// The status code of a failing search.
    pub async fn search_code(&mut self, request: pb::SearchRequest) -> Code {
        self.search.search(request).await.unwrap_err().code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A declared field.
pub fn field(name: &str, ty: FieldType, f: impl FnOnce(&mut Field)) -> Field {
    let mut field = Field {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    };
    f(&mut field);
    field
}

/// title TEXT (boost 2), body TEXT english, tags KEYWORD, n INTEGER, price FLOAT,
/// live BOOLEAN, date TIMESTAMP; all but the text fields filterable, sortable
/// and facetable.
pub fn test_fields() -> Vec<Field> {
    let all = |f: &mut Field| {
        f.filterable = true;
        f.sortable = true;
        f.facetable = true;
    };
    vec![
        field("title", FieldType::Text, |f| f.boost = 2.0),
        field("body", FieldType::Text, |f| f.analyzer = "english".into()),
        field("tags", FieldType::Keyword, all),
        field("n", FieldType::Integer, all),
        field("price", FieldType::Float, all),
        field("live", FieldType::Boolean, all),
        field("date", FieldType::Timestamp, all),
    ]
}

/// A wire document from JSON fields.
pub fn doc(id: &str, fields: serde_json::Value) -> pb::Document {
    pb::Document {
        id: id.into(),
        fields: Some(to_struct(fields)),
        ..Default::default()
    }
}

/// A JSON object as a protobuf Struct.
pub fn to_struct(value: serde_json::Value) -> prost_types::Struct {
    match to_value(value).kind {
        Some(prost_types::value::Kind::StructValue(s)) => s,
        _ => panic!("not an object"),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A Struct as JSON, for assertions.
pub fn to_json(s: &prost_types::Struct) -> serde_json::Value {
    fn value(v: &prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match &v.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => json!(b),
            Some(Kind::NumberValue(n)) => json!(n),
            Some(Kind::StringValue(s)) => json!(s),
            Some(Kind::ListValue(l)) => {
                serde_json::Value::Array(l.values.iter().map(value).collect())
            }
            Some(Kind::StructValue(s)) => to_json(s),
        }
    }
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect(),
    )
}

/// The field name of the first BadRequest violation in a status.
pub fn bad_request_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_else(|| panic!("no BadRequest detail in {status:?}"))
}

/// A search request on `collection` with `query`.
pub fn query(collection: &str, q: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: collection.into(),
        query: q.into(),
        ..Default::default()
    }
}

/// The ids of a search's hits.
pub fn ids(response: &pb::SearchResponse) -> Vec<String> {
    response.hits.iter().map(|h| h.id.clone()).collect()
}
