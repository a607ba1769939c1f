//! TLS and mutual TLS, with certificates made in the test.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use trove::api::pb;
use trove::api::pb::collection_service_client::CollectionServiceClient;
use trove::config::Config;

/// A CA, and a server and a client certificate it signed, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: String,
    client_key: String,
    /// A client identity signed by another CA.
    stranger_cert: String,
    stranger_key: String,
}

fn make_ca() -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params, KeyPair::generate().unwrap())
}

fn pki(dir: &Path) -> Pki {
    let (ca_params, ca_key) = make_ca();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let (other_params, other_key) = make_ca();
    let other = Issuer::new(other_params, other_key);
    let stranger_key = KeyPair::generate().unwrap();
    let stranger_cert = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&stranger_key, &other)
        .unwrap();

    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", server_cert.pem()),
        server_key: write("server.key", server_key.serialize_pem()),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
        stranger_cert: stranger_cert.pem(),
        stranger_key: stranger_key.serialize_pem(),
    }
}

/// Serves `config` on a loopback port until the sender is dropped.
async fn serve(config: Config) -> (u16, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel::<()>();
    let engine = trove::server::engine_for(&config);
    tokio::spawn(trove::server::serve(engine, config, listener, async {
        let _ = rx.await;
    }));
    (port, tx)
}

async fn tls_channel(port: u16, tls: ClientTlsConfig) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
}

/// Whether a health check over `channel` works.
async fn health_ok(channel: Channel) -> bool {
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn tls_serves_clients_that_trust_its_ca_and_plaintext_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut config = Config::for_tests();
    config.tls_cert = Some(pki.server_cert.clone());
    config.tls_key = Some(pki.server_key.clone());
    let (port, _stop) = serve(config).await;

    let ca = Certificate::from_pem(std::fs::read(&pki.ca).unwrap());
    let channel = tls_channel(port, ClientTlsConfig::new().ca_certificate(ca.clone()))
        .await
        .unwrap();
    // The server becomes SERVING after start-up; then real calls work.
    let mut health = HealthClient::new(channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(status) = watch.message().await.unwrap() {
        if status.status == 1 {
            break;
        }
    }
    CollectionServiceClient::new(channel)
        .list_collections(pb::ListCollectionsRequest::default())
        .await
        .unwrap();

    // A client that does not trust the CA cannot connect.
    let untrusted = tls_channel(port, ClientTlsConfig::new()).await;
    assert!(
        untrusted.is_err() || !health_ok(untrusted.unwrap()).await,
        "a client without the CA connected"
    );
    // Plaintext to a TLS port fails.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    assert!(
        plain.is_err() || !health_ok(plain.unwrap()).await,
        "plaintext worked on a TLS port"
    );
}

#[tokio::test]
async fn mutual_tls_admits_only_clients_signed_by_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut config = Config::for_tests();
    config.tls_cert = Some(pki.server_cert.clone());
    config.tls_key = Some(pki.server_key.clone());
    config.tls_client_ca = Some(pki.ca.clone());
    let (port, _stop) = serve(config).await;
    let ca = Certificate::from_pem(std::fs::read(&pki.ca).unwrap());

    let with_identity = |cert: &str, key: &str| {
        ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .identity(Identity::from_pem(cert, key))
    };
    let admitted = tls_channel(port, with_identity(&pki.client_cert, &pki.client_key))
        .await
        .unwrap();
    assert!(health_ok(admitted).await);

    let anonymous = tls_channel(port, ClientTlsConfig::new().ca_certificate(ca.clone())).await;
    assert!(
        anonymous.is_err() || !health_ok(anonymous.unwrap()).await,
        "a client without a certificate was admitted"
    );
    let stranger = tls_channel(port, with_identity(&pki.stranger_cert, &pki.stranger_key)).await;
    assert!(
        stranger.is_err() || !health_ok(stranger.unwrap()).await,
        "a client signed by another CA was admitted"
    );
}

#[tokio::test]
async fn unreadable_tls_files_stop_start_up_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests();
    config.tls_cert = Some(dir.path().join("missing.pem"));
    config.tls_key = Some(dir.path().join("missing.key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let engine = trove::server::engine_for(&config);
    let err = trove::server::serve(engine, config, listener, async {})
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
}

/// `trove import` against a server with mutual TLS and API keys: it connects
/// with `--ca-cert`, `--client-cert`, `--client-key` and `--tls-domain`, sends
/// `--api-key`, and says what to pass when something is missing.
#[tokio::test]
async fn the_importer_reaches_a_server_with_mutual_tls_and_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "[[keys]]\nkey = \"admin-key\"\nscope = \"admin\"\n\n\
         [[keys]]\nkey = \"writer-key\"\nscope = \"write\"\n\n\
         [[keys]]\nkey = \"reader-key\"\nscope = \"read\"\n",
    )
    .unwrap();
    let mut config = Config::for_tests();
    config.tls_cert = Some(pki.server_cert.clone());
    config.tls_key = Some(pki.server_key.clone());
    config.tls_client_ca = Some(pki.ca.clone());
    config.api_keys = Some(keys);
    let (port, _stop) = serve(config).await;
    let client_cert = dir.path().join("client.pem");
    let client_key = dir.path().join("client.key");
    std::fs::write(&client_cert, &pki.client_cert).unwrap();
    std::fs::write(&client_key, &pki.client_key).unwrap();

    // The collection, made with the admin key once the server serves.
    let ca = Certificate::from_pem(std::fs::read(&pki.ca).unwrap());
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    let channel = tls_channel(port, tls).await.unwrap();
    let mut collections = CollectionServiceClient::new(channel);
    let create = || {
        let mut request = tonic::Request::new(pb::CreateCollectionRequest {
            collection: Some(pb::Collection {
                name: "books".into(),
                fields: crate::harness::test_fields(),
                ..Default::default()
            }),
            request_id: String::new(),
        });
        request
            .metadata_mut()
            .insert("authorization", "Bearer admin-key".parse().unwrap());
        request
    };
    let started = std::time::Instant::now();
    while let Err(status) = collections.create_collection(create()).await {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(started.elapsed().as_secs() < 60, "the server never served");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let file = dir.path().join("books.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"title\": \"one\"}\n{\"id\": \"b\", \"title\": \"two\"}\n",
    )
    .unwrap();
    let args = |key: Option<&str>| trove::config::ImportArgs {
        collection: "books".into(),
        addr: format!("127.0.0.1:{port}"),
        async_visibility: false,
        quiet: true,
        allow_failures: false,
        api_key: key.map(str::to_owned),
        ca_cert: Some(pki.ca.clone()),
        client_cert: Some(client_cert.clone()),
        client_key: Some(client_key.clone()),
        tls_domain: Some("localhost".into()),
        path: file.clone(),
    };
    let summary = trove::import::run(&args(Some("writer-key")), false)
        .await
        .unwrap();
    assert_eq!(summary.imported, 2);
    assert!(summary.failures.is_empty());

    let fails = |args: trove::config::ImportArgs, wanted: &'static str| async move {
        let err = trove::import::run(&args, false).await.unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains(wanted), "{wanted:?} not in {message}");
    };
    fails(args(None), "--api-key").await;
    fails(args(Some("reader-key")), "write scope").await;
    fails(args(Some("unknown-key")), "--api-key").await;
    let mut missing = args(Some("writer-key"));
    missing.collection = "nothing".into();
    fails(missing, "create the collection first").await;
    let mut plain = args(Some("writer-key"));
    plain.ca_cert = None;
    plain.client_cert = None;
    plain.client_key = None;
    plain.tls_domain = None;
    fails(plain, "--ca-cert").await;
    let mut no_identity = args(Some("writer-key"));
    no_identity.client_cert = None;
    no_identity.client_key = None;
    fails(no_identity, "--client-cert").await;
    let mut refused = args(Some("writer-key"));
    refused.addr = "127.0.0.1:1".into();
    fails(refused, "nothing listens there").await;
}
