//! TLS of the server: its certificate and key, and the CA of client
//! certificates for mutual TLS.

use anyhow::Context as _;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::Config;

/// The TLS settings of `--tls-cert`, `--tls-key` and `--tls-client-ca`.
pub(super) fn tls_config(config: &Config) -> anyhow::Result<Option<ServerTlsConfig>> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
    };
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let identity = Identity::from_pem(
        read(cert, "TLS certificate")?,
        read(key, "TLS private key")?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca, "TLS client CA")?));
    }
    Ok(Some(tls))
}
