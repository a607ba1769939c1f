//! Load shedding and metrics.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use trove::api::pb;
use trove::config::Config;

use crate::harness::{Server, doc, query};
use crate::process::Process;

#[tokio::test]
async fn requests_beyond_the_bound_are_shed_at_once_and_health_still_answers() {
    let mut config = Config::for_tests();
    config.max_concurrent_requests = 1;
    let mut s = Server::start_with(config).await;
    s.create_test_collection("news").await;

    // An import that stays open holds the one place. (If it arrives while a
    // search of the loop below holds the place, it is itself shed: start another.)
    let start_import = |s: &Server| {
        let (tx, rx) = mpsc::channel(4);
        let mut client = s.documents.clone();
        tokio::spawn(async move {
            tx.send(pb::ImportDocumentsRequest {
                collection: "news".into(),
                document: Some(doc("held", json!({"title": "held"}))),
                async_visibility: false,
            })
            .await
            .unwrap();
            let response = client.import_documents(ReceiverStream::new(rx)).await;
            (tx, response)
        })
    };
    let mut import = start_import(&s);
    let deadline = Instant::now() + Duration::from_secs(30);
    let shed = loop {
        if import.is_finished() {
            let (_, response) = import.await.unwrap();
            assert_eq!(response.unwrap_err().code(), Code::ResourceExhausted);
            import = start_import(&s);
        }
        match s.search.search(query("news", "held")).await {
            Err(status) if status.code() == Code::ResourceExhausted => break status,
            Ok(_) => {}
            Err(other) => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "never shed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(shed.message().contains("limit of 1"), "{shed:?}");
    let retry = tonic_types::StatusExt::get_details_retry_info(&shed).expect("RetryInfo");
    assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()), "{retry:?}");
    let health = s
        .health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1);

    // When the import ends (its sender dropped), requests are admitted again.
    import.abort();
    let _ = import.await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(status) = s.search.search(query("news", "held")).await {
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(Instant::now() < deadline, "never admitted again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.stop().await;
}

/// `GET /metrics` from `addr`, as text.
fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: trove\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test]
async fn metrics_count_requests_by_method_and_code_and_report_collections() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut process = Process::start(
        &dir.path().join("data"),
        &["--metrics-listen", &metrics_addr],
    )
    .await;
    let mut clients = process.connect().await;
    clients
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "news".into(),
                fields: crate::harness::test_fields(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    for id in ["a", "b", "c"] {
        clients
            .documents
            .create_document(pb::CreateDocumentRequest {
                collection: "news".into(),
                document: Some(doc(id, json!({"title": "Metrics"}))),
                async_visibility: false,
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    clients
        .search
        .search(query("news", "metrics"))
        .await
        .unwrap();
    let err = clients
        .search
        .search(query("missing", "metrics"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Gauges are sampled every second.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = scrape(&metrics_addr);
        if text.contains("trove_collection_documents{collection=\"news\"} 3") {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in [
        "trove_requests_total{method=\"/trove.v1.DocumentService/CreateDocument\",code=\"Ok\"} 3",
        "trove_requests_total{method=\"/trove.v1.SearchService/Search\",code=\"Ok\"} 1",
        "trove_requests_total{method=\"/trove.v1.SearchService/Search\",code=\"NotFound\"} 1",
        "trove_request_duration_seconds_count{method=\"/trove.v1.SearchService/Search\"} 2",
        "trove_write_visibility_seconds_count 3",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
    for name in [
        "trove_collection_memory_bytes{collection=\"news\"}",
        "trove_commit_duration_seconds_bucket",
        "trove_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "missing {name}:\n{text}");
    }
}

#[tokio::test]
async fn at_the_memory_limit_writes_are_refused_and_reads_and_deletes_go_on() {
    // A limit below what the process already holds: every write is refused.
    let mut config = Config::for_tests();
    config.max_memory = Some(1 << 20);
    let mut s = Server::start_with(config).await;
    let err = s
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "c".into(),
                fields: crate::harness::test_fields(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("memory limit"), "{err:?}");
    let retry = tonic_types::StatusExt::get_details_retry_info(&err).expect("RetryInfo");
    assert!(retry.retry_delay.is_some_and(|d| !d.is_zero()), "{retry:?}");
    let err = s
        .documents
        .create_document(pb::CreateDocumentRequest {
            collection: "c".into(),
            document: Some(doc("a", json!({"title": "x"}))),
            async_visibility: false,
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let err = s
        .documents
        .import_documents(tokio_stream::iter(vec![pb::ImportDocumentsRequest {
            collection: "c".into(),
            document: Some(doc("a", json!({"title": "x"}))),
            async_visibility: false,
        }]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // Reads and deletes pass the limit (and get their own answers).
    s.collections
        .list_collections(pb::ListCollectionsRequest::default())
        .await
        .unwrap();
    let err = s
        .collections
        .delete_collection(pb::DeleteCollectionRequest {
            name: "c".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    s.stop().await;

    // A limit far above: writes go through.
    let mut config = Config::for_tests();
    config.max_memory = Some(1 << 40);
    let mut s = Server::start_with(config).await;
    s.create_test_collection("c").await;
    s.put("c", "a", json!({"title": "x"})).await;
    s.stop().await;
}

/// A gRPC request over HTTP/2 by hand: a connection of its own, whose
/// client never gives the server more window than HTTP/2's initial 64 KiB.
struct RawConnection {
    addr: String,
    client: h2::client::SendRequest<bytes::Bytes>,
}

impl RawConnection {
    async fn open(addr: &str) -> RawConnection {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        RawConnection {
            addr: addr.to_owned(),
            client,
        }
    }

    /// Sends the headers of `method`, and `message` (gRPC-framed) unless it
    /// is `None`.
    async fn send(
        &mut self,
        method: &str,
        message: Option<&[u8]>,
    ) -> (h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>) {
        let request = http::Request::post(format!("http://{}{method}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let mut client = self.client.clone().ready().await.unwrap();
        let (response, mut stream) = client.send_request(request, false).unwrap();
        if let Some(message) = message {
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(message);
            stream.send_data(framed.into(), true).unwrap();
        }
        (response, stream)
    }
}

/// The gRPC status in a response's headers (a trailers-only answer), if any.
fn header_status(response: &http::Response<h2::RecvStream>) -> Option<tonic::Status> {
    tonic::Status::from_header_map(response.headers())
}

/// Requests whose headers came and whose message never does hold no place
/// among the requests in progress: other clients are served, and each such
/// request is DEADLINE_EXCEEDED after the receive timeout.
#[tokio::test]
async fn requests_whose_message_never_comes_hold_no_place() {
    let mut config = Config::for_tests();
    config.max_concurrent_requests = 16;
    config.receive_timeout = Duration::from_secs(1);
    let mut s = Server::start_with(config).await;
    s.create_test_collection("news").await;
    let mut raw = RawConnection::open(&s.addr.to_string()).await;
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(raw.send("/trove.v1.SearchService/Search", None).await);
    }
    // Every place would be taken by now; others are served all the same.
    for _ in 0..5 {
        s.find(query("news", "anything")).await;
    }
    let (response, _stream) = silent.pop().unwrap();
    let response = response.await.unwrap();
    let status = header_status(&response).expect("a trailers-only status");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("--receive-timeout"), "{status:?}");
    s.stop().await;
}

/// A client that sends requests and never reads the responses: the
/// responses keep their places until read, the connection is refused new
/// requests once it holds more than 64 MiB unread, and past the send timeout
/// the responses are ended (their data dropped, the stream reset) and the
/// connection is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_nobody_reads_are_bounded_and_ended() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut process = Process::start(&data, &["--send-timeout", "3s"]).await;
    let mut clients = process.connect().await;
    clients
        .collections
        .create_collection(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "news".into(),
                fields: crate::harness::test_fields(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let text: String = (0..3000)
        .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
        .collect();
    let imports: Vec<_> = (0..1000)
        .map(|i| pb::ImportDocumentsRequest {
            collection: "news".into(),
            document: Some(doc(
                &format!("d{i:04}"),
                json!({"title": "t", "blob": text}),
            )),
            async_visibility: false,
        })
        .collect();
    clients
        .documents
        .import_documents(tokio_stream::iter(imports))
        .await
        .unwrap();
    let list = prost::Message::encode_to_vec(&pb::ListDocumentsRequest {
        collection: "news".into(),
        page_size: 1000,
        ..Default::default()
    });

    // One request at a time, each once its headers are back: about 3 MiB
    // unread each.
    let mut raw = RawConnection::open(&process.addr).await;
    let mut unread = Vec::new();
    let mut refused = None;
    for _ in 0..40 {
        let (response, _stream) = raw
            .send("/trove.v1.DocumentService/ListDocuments", Some(&list))
            .await;
        let response = response.await.unwrap();
        match header_status(&response) {
            Some(status) => {
                refused = Some(status);
                break;
            }
            None => unread.push(response),
        }
    }
    let refused = refused.expect("the connection was refused more requests");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("not read"), "{refused:?}");
    assert!(
        (20..=23).contains(&unread.len()),
        "{} accepted",
        unread.len()
    );
    // Another connection is served meanwhile.
    let found = clients.search.search(query("news", "t")).await.unwrap();
    assert_eq!(found.into_inner().total_size, 1000);

    // Past the send timeout the unread responses are ended: their data is
    // dropped, so the connection's unread bytes fall and it is served again.
    // (Their streams are reset once the client opens its window.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (response, _stream) = raw
            .send("/trove.v1.DocumentService/ListDocuments", Some(&list))
            .await;
        let response = response.await.unwrap();
        if header_status(&response).is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "the connection stayed refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = process.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
