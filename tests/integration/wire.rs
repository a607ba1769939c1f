//! The wire itself: reflection, message limits, undecodable requests, compression.

use bytes::{Buf, BufMut};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_reflection::pb::v1::ServerReflectionRequest as V1ReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as V1Client;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as V1Request;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as V1Response;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;

use crate::harness::{Server, query};

#[tokio::test]
async fn reflection_v1_and_v1alpha_resolve_every_type() {
    let s = Server::start().await;
    let mut v1 = V1Client::new(s.channel.clone());
    let requests = vec![
        V1ReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::ListServices(String::new())),
        },
        V1ReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::FileContainingSymbol(
                "trove.v1.SearchRequest".into(),
            )),
        },
        V1ReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::FileByFilename(
                "google/protobuf/struct.proto".into(),
            )),
        },
        V1ReflectionRequest {
            host: String::new(),
            message_request: Some(V1Request::FileContainingSymbol(
                "grpc.health.v1.Health".into(),
            )),
        },
    ];
    let mut responses = v1
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut answers = Vec::new();
    while let Some(response) = responses.next().await {
        answers.push(response.unwrap().message_response.unwrap());
    }
    match &answers[0] {
        V1Response::ListServicesResponse(list) => {
            let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
            for want in [
                "trove.v1.CollectionService",
                "trove.v1.DocumentService",
                "trove.v1.SearchService",
                "grpc.health.v1.Health",
            ] {
                assert!(names.contains(&want), "{want} missing from {names:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    for answer in &answers[1..] {
        assert!(
            matches!(answer, V1Response::FileDescriptorResponse(f) if !f.file_descriptor_proto.is_empty()),
            "{answer:?}"
        );
    }

    let mut alpha = AlphaClient::new(s.channel.clone());
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![AlphaReflectionRequest {
            host: String::new(),
            message_request: Some(AlphaRequest::FileContainingSymbol(
                "trove.v1.DocumentService".into(),
            )),
        }]))
        .await
        .unwrap()
        .into_inner();
    let answer = responses
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap();
    assert!(
        matches!(answer, AlphaResponse::FileDescriptorResponse(_)),
        "{answer:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let huge = query("c", &"x".repeat(trove::server::MAX_QUERY_MESSAGE_BYTES + 1));
    assert_eq!(s.search_code(huge).await, Code::ResourceExhausted);
    // A 1 MiB search is fine (and its query too long to parse is INVALID_ARGUMENT, not a transport error).
    let big = query("c", &"word ".repeat(200_000));
    assert_eq!(s.search_code(big).await, Code::InvalidArgument);
    assert_eq!(s.find(query("c", "still serving")).await.total_size, 0);
    s.stop().await;
}

/// Sends raw bytes as the request message and ignores the response body.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.copy_to_bytes(src.remaining()).to_vec();
        Ok(Some(bytes))
    }
}

#[tokio::test]
async fn undecodable_requests_are_invalid_argument() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let mut grpc = tonic::client::Grpc::new(s.channel.clone());
    let mut nested = Vec::new();
    // 200 levels of nested Struct values: deeper than prost's recursion limit.
    for _ in 0..200 {
        let mut outer = vec![0x12];
        prost::encoding::encode_varint(nested.len() as u64, &mut outer);
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    for (name, body) in [
        ("truncated", vec![0x0a, 0x10, b'c']),
        ("bad wire type", vec![0x0f, 0x01]),
        ("bad utf-8", vec![0x0a, 0x02, 0xff, 0xfe]),
        ("too deep", {
            // CreateDocumentRequest.document(2).fields(2) then nested struct values.
            let mut doc_fields = Vec::new();
            let mut entry = vec![0x0a, 0x01, b'k', 0x12];
            prost::encoding::encode_varint(nested.len() as u64, &mut entry);
            entry.extend_from_slice(&nested);
            doc_fields.push(0x0a);
            prost::encoding::encode_varint(entry.len() as u64, &mut doc_fields);
            doc_fields.extend_from_slice(&entry);
            let mut document = vec![0x12];
            prost::encoding::encode_varint(doc_fields.len() as u64, &mut document);
            document.extend_from_slice(&doc_fields);
            let mut request = vec![0x0a, 0x01, b'c', 0x12];
            prost::encoding::encode_varint(document.len() as u64, &mut request);
            request.extend_from_slice(&document);
            request
        }),
    ] {
        grpc.ready().await.unwrap();
        let path = if name == "too deep" {
            "/trove.v1.DocumentService/CreateDocument"
        } else {
            "/trove.v1.SearchService/Search"
        };
        let err = grpc
            .unary(
                tonic::Request::new(body),
                http::uri::PathAndQuery::from_static(path),
                RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}: {err:?}");
    }
    assert_eq!(s.find(query("c", "")).await.total_size, 0, "still serving");
    s.stop().await;
}

/// The status of a request whose gRPC body is `body`, sent over HTTP/2 by hand
/// (a gRPC client would not send these), with `encoding` as `grpc-encoding`.
async fn raw_status(
    s: &Server,
    path: &str,
    encoding: Option<&str>,
    body: &'static [u8],
) -> tonic::Status {
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = http::Request::post(format!("http://{}{path}", s.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(encoding) = encoding {
        request = request.header("grpc-encoding", encoding);
    }
    let (response, mut stream) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    stream
        .send_data(bytes::Bytes::from_static(body), true)
        .unwrap();
    let response = response.await.unwrap();
    if let Some(status) = tonic::Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk.unwrap();
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    tonic::Status::from_header_map(&trailers).expect("a status in the trailers")
}

/// Requests that cannot be read (cut short, an unknown compression flag, bytes
/// that are not gzip, no message at all) are INVALID_ARGUMENT, not INTERNAL.
#[tokio::test]
async fn unreadable_grpc_frames_are_invalid_argument() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    let search = "/trove.v1.SearchService/Search";
    for (name, encoding, body) in [
        (
            "a frame cut short",
            None,
            &[0u8, 0, 0, 0, 9, 0x0a, 0x01, b'c'][..],
        ),
        (
            "compression flag 2",
            None,
            &[2u8, 0, 0, 0, 3, 0x0a, 0x01, b'c'][..],
        ),
        (
            "corrupt gzip",
            Some("gzip"),
            &[1u8, 0, 0, 0, 4, 1, 2, 3, 4][..],
        ),
        ("no message", None, &[][..]),
    ] {
        let status = raw_status(&s, search, encoding, body).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        assert!(
            status.message().contains("request does not decode"),
            "{name}: {status:?}"
        );
    }
    // A compressed flag without `grpc-encoding` is INTERNAL: gRPC's
    // compression spec requires it.
    let status = raw_status(&s, search, None, &[1u8, 0, 0, 0, 3, 0x0a, 0x01, b'c']).await;
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(s.find(query("c", "")).await.total_size, 0, "still serving");
    s.stop().await;
}

/// The encoding of a search's response for a client that sends `send`
/// (identity if `None`) and accepts `accept`.
async fn response_encoding(
    s: &Server,
    send: Option<tonic::codec::CompressionEncoding>,
    accept: tonic::codec::CompressionEncoding,
) -> Option<String> {
    let mut client =
        trove::api::pb::search_service_client::SearchServiceClient::new(s.channel.clone())
            .accept_compressed(accept);
    if let Some(send) = send {
        client = client.send_compressed(send);
    }
    let response = client.search(query("c", "squeeze")).await.unwrap();
    let encoding = response
        .metadata()
        .get("grpc-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(response.into_inner().hits.len(), 1);
    encoding
}

#[tokio::test]
async fn compressed_requests_and_responses() {
    use tonic::codec::CompressionEncoding::{Gzip, Zstd};
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    s.put("c", "z", serde_json::json!({"title": "squeeze"}))
        .await;
    // By default a response is compressed when its request was.
    for (encoding, name) in [(Gzip, "gzip"), (Zstd, "zstd")] {
        let got = response_encoding(&s, Some(encoding), encoding).await;
        assert_eq!(got.as_deref(), Some(name));
        // Accepting an encoding (as grpcio's channels do) is not asking for it.
        assert_eq!(response_encoding(&s, None, encoding).await, None);
    }
    s.stop().await;

    // `--compress-responses always`: whenever the client accepts it.
    let mut config = trove::config::Config::for_tests();
    config.compress_responses = trove::config::CompressResponses::Always;
    let mut s = Server::start_with(config).await;
    s.create_test_collection("c").await;
    s.put("c", "z", serde_json::json!({"title": "squeeze"}))
        .await;
    assert_eq!(
        response_encoding(&s, None, Gzip).await.as_deref(),
        Some("gzip")
    );
    s.stop().await;

    // `never`: not even for a client that compresses.
    let mut config = trove::config::Config::for_tests();
    config.compress_responses = trove::config::CompressResponses::Never;
    let mut s = Server::start_with(config).await;
    s.create_test_collection("c").await;
    s.put("c", "z", serde_json::json!({"title": "squeeze"}))
        .await;
    assert_eq!(response_encoding(&s, Some(Zstd), Zstd).await, None);
    s.stop().await;
}

#[tokio::test]
async fn a_passed_client_deadline_is_deadline_exceeded() {
    let mut s = Server::start().await;
    s.create_test_collection("c").await;
    // tonic's and grpcio's clients end a call at its deadline themselves, so this
    // speaks HTTP/2 directly to see what the server answers: an import whose
    // stream stays open past its `grpc-timeout`.
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/trove.v1.DocumentService/ImportDocuments",
        s.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-timeout", "200m")
    .body(())
    .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    // One message: collection "c", no document (5-byte gRPC frame header first).
    body.send_data(
        bytes::Bytes::from_static(&[0, 0, 0, 0, 3, 0x0a, 0x01, b'c']),
        false,
    )
    .unwrap();
    let response = response.await.unwrap();
    let status =
        tonic::Status::from_header_map(response.headers()).expect("a trailers-only status");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(s.find(query("c", "")).await.total_size, 0, "still serving");
    s.stop().await;
}

/// With `TROVE_LOG=debug` each request is logged with its method and request
/// id; at the default level the request layer is left out and nothing of a
/// request is logged, but its id is still echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_with_their_ids_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    for (level, logged) in [("debug", true), ("info", false)] {
        let data = dir.path().join(level);
        let mut process =
            crate::process::Process::start_with_env(&data, &[], &[("TROVE_LOG", level)]).await;
        let mut clients = process.connect().await;
        let id = format!("log-me-{level}");
        let mut request = tonic::Request::new(trove::api::pb::GetCollectionRequest {
            name: "missing".into(),
        });
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().unwrap());
        let err = clients
            .collections
            .get_collection(request)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.metadata().get("x-request-id").unwrap(), id.as_str());
        // The log is written as the response goes; give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let line_of = |text: &str| {
            text.lines()
                .find(|l| {
                    l.contains(&id) && l.contains("/trove.v1.CollectionService/GetCollection")
                })
                .map(str::to_owned)
        };
        if logged {
            while line_of(&process.log_text()).is_none() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(
                line_of(&process.log_text()).is_some(),
                "{}",
                process.log_text()
            );
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(!process.log_text().contains(&id), "{}", process.log_text());
        }
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let mut s = Server::start().await;
    s.create_test_collection("news").await;

    let mut request = tonic::Request::new(query("news", "anything"));
    request
        .metadata_mut()
        .insert("x-request-id", "client-chosen-17".parse().unwrap());
    let response = s.search.search(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "client-chosen-17"
    );

    // Without one, the server makes a UUID; errors carry it too.
    let err = s.search.search(query("missing", "x")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let generated = err
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");

    let response = s.search.search(query("news", "anything")).await.unwrap();
    let other = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(other).is_ok() && other != generated);
}

#[tokio::test]
async fn a_connection_is_told_its_stream_limit() {
    let mut config = trove::config::Config::for_tests();
    config.max_concurrent_streams = 7;
    let s = Server::start_with(config).await;
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    // The server's SETTINGS arrive with the first exchange.
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", s.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .unwrap();
    response.await.unwrap();
    assert_eq!(client.current_max_send_streams(), 7);
    s.stop().await;
}

#[tokio::test]
async fn connections_older_than_max_connection_age_are_closed() {
    let mut config = trove::config::Config::for_tests();
    config.max_connection_age = Some(std::time::Duration::from_millis(300));
    let s = Server::start_with(config).await;
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let closed = tokio::spawn(connection);
    // The client keeps its handle, so only the server can end the connection.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), closed).await;
    assert!(ended.is_ok(), "the connection outlived its maximum age");
    drop(client);
    s.stop().await;
}
