//! API keys with scopes.
//!
//! `--api-keys FILE` names a TOML file of `[[keys]]` tables:
//!
//! ```toml
//! [[keys]]
//! key = "…"                 # the secret, sent as `authorization: Bearer …`
//! scope = "read"            # read | write | admin
//! collections = ["news"]    # optional; absent = every collection
//! rate_per_s = 100          # optional; requests per second beyond it: RESOURCE_EXHAUSTED
//! ```
//!
//! [`AuthLayer`] checks the key and the method's scope of every request before the
//! request is decoded, so an unauthenticated caller learns nothing about its
//! request's validity. A key limited to some collections is checked by the
//! handlers once they have read the collection's name ([`check_collection`]),
//! still before anything else of the request is validated. Health and
//! reflection stay open. Keys are compared through their SHA-256 digests, in
//! constant time over every key. SIGHUP reloads the file ([`Keys::reload`]).

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::RwLock;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

use super::BoxFuture;
use crate::api::methods;

pub use crate::api::methods::Scope;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

// Unknown fields are refused: a misspelt `collections` would otherwise grant
// every collection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key: String,
    scope: Scope,
    collections: Option<Vec<String>>,
    rate_per_s: Option<u32>,
}

/// One key of the file.
struct Key {
    digest: [u8; 32],
    /// Its position in the file, for logs (never the key itself).
    number: usize,
    access: Access,
    limiter: Option<(u32, DefaultDirectRateLimiter)>,
}

/// What the caller's key allows, handed to the handlers in the request's
/// extensions. Absent when the server has no keys.
#[derive(Clone, Debug)]
pub struct Access {
    pub scope: Scope,
    /// `None`: every collection.
    pub collections: Option<Arc<HashSet<String>>>,
}

impl Access {
    /// Whether the key may touch `collection`.
    pub fn allows(&self, collection: &str) -> bool {
        self.collections
            .as_ref()
            .is_none_or(|names| names.contains(collection))
    }
}

/// The keys of one reading of the file.
struct KeySet {
    keys: Vec<Key>,
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl KeySet {
    fn parse(text: &str) -> anyhow::Result<KeySet> {
        let file: KeyFile = toml::from_str(text)?;
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(file.keys.len());
        for (i, entry) in file.keys.into_iter().enumerate() {
            let number = i + 1;
            anyhow::ensure!(!entry.key.is_empty(), "key {number}: `key` is empty");
            anyhow::ensure!(
                entry.key.bytes().all(|b| b.is_ascii_graphic()),
                "key {number}: `key` must be printable ASCII without spaces (it travels in a header)"
            );
            let digest = digest(entry.key.as_bytes());
            anyhow::ensure!(
                seen.insert(digest),
                "key {number}: the same key appears twice"
            );
            let limiter = match entry.rate_per_s {
                None => None,
                Some(rate) => {
                    let per_s = NonZeroU32::new(rate).with_context(|| {
                        format!("key {number}: `rate_per_s` must be at least 1")
                    })?;
                    Some((rate, RateLimiter::direct(Quota::per_second(per_s))))
                }
            };
            keys.push(Key {
                digest,
                number,
                access: Access {
                    scope: entry.scope,
                    collections: entry
                        .collections
                        .map(|names| Arc::new(names.into_iter().collect())),
                },
                limiter,
            });
        }
        // A file with no keys would lock every client out, admin included:
        // most likely a file caught half-written or emptied by mistake.
        anyhow::ensure!(
            !keys.is_empty(),
            "the file has no [[keys]]: every client would be refused"
        );
        Ok(KeySet { keys })
    }

    /// The key whose digest is `presented`'s. Every key is compared, each in
    /// constant time, so the time taken says nothing about which matched.
    fn find(&self, presented: &[u8]) -> Option<&Key> {
        let wanted = digest(presented);
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&wanted)) {
                found = Some(key);
            }
        }
        found
    }
}

/// The server's keys, reloadable.
pub struct Keys {
    path: PathBuf,
    current: RwLock<Arc<KeySet>>,
}

impl Keys {
    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Keys> {
        let set = read(path)?;
        Ok(Keys {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// Reads the file again; on an error the keys in use stay in use.
    pub fn reload(&self) -> anyhow::Result<usize> {
        let set = read(&self.path)?;
        let count = set.keys.len();
        *self.current.write() = Arc::new(set);
        Ok(count)
    }

    /// The number of keys in use.
    pub fn len(&self) -> usize {
        self.current.read().keys.len()
    }

    /// Whether no key is in use (then every request is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Authenticates `authorization` for a method that needs `scope`.
    fn authorize(&self, authorization: Option<&[u8]>, scope: Scope) -> Result<Access, Status> {
        let presented = match authorization.map(bearer) {
            None => {
                return Err(Status::unauthenticated(
                    "this server requires an API key: send `authorization: Bearer <key>` metadata",
                ));
            }
            Some(None) => {
                return Err(Status::unauthenticated(
                    "the authorization metadata must be `Bearer <key>`",
                ));
            }
            Some(Some(key)) => key,
        };
        let set = self.current.read().clone();
        let key = set
            .find(presented)
            .ok_or_else(|| Status::unauthenticated("unknown API key"))?;
        if key.access.scope < scope {
            return Err(Status::permission_denied(format!(
                "this method needs a key of scope {}; the key has scope {}",
                scope.name(),
                key.access.scope.name()
            )));
        }
        if let Some((rate, limiter)) = &key.limiter
            && limiter.check().is_err()
        {
            tracing::debug!(key = key.number, "rate limited");
            // The next request of this key is admitted after about 1/rate s.
            let delay = std::time::Duration::from_secs_f64(1.0 / f64::from((*rate).max(1)));
            return Err(super::retry::exhausted(
                format!("this key's rate of {rate} requests per second is exceeded; retry later"),
                delay,
            ));
        }
        Ok(key.access.clone())
    }
}

fn read(path: &Path) -> anyhow::Result<KeySet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the API key file {}", path.display()))?;
    KeySet::parse(&text).with_context(|| format!("in the API key file {}", path.display()))
}

/// The key of `Bearer <key>` (the scheme is case-insensitive, RFC 7235).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let key = rest.trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// Refuses `collection` to a key limited to other collections.
pub fn check_collection<T>(request: &tonic::Request<T>, collection: &str) -> Result<(), Status> {
    check_access(request.extensions().get::<Access>(), collection)
}

/// As [`check_collection`], for handlers that took the request apart.
pub fn check_access(access: Option<&Access>, collection: &str) -> Result<(), Status> {
    match access {
        Some(access) if !access.allows(collection) => Err(Status::permission_denied(format!(
            "this key may not use collection `{collection}`"
        ))),
        _ => Ok(()),
    }
}

/// Checks API keys (see the module documentation); without keys, lets
/// everything through.
#[derive(Clone)]
pub struct AuthLayer {
    keys: Option<Arc<Keys>>,
}

impl AuthLayer {
    pub fn new(keys: Option<Arc<Keys>>) -> Self {
        AuthLayer { keys }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            keys: self.keys.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    keys: Option<Arc<Keys>>,
}

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // A path the method table does not name is refused, whatever the key:
        // a method nobody described gets no default scope.
        let Some(method) = methods::method(request.uri().path()) else {
            let path: String = request.uri().path().chars().take(200).collect();
            let status =
                Status::unimplemented(format!("{path:?} is not a method this server serves"));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        if let Some(keys) = &self.keys
            && let Some(scope) = method.scope
        {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            match keys.authorize(authorization, scope) {
                Ok(access) => {
                    request.extensions_mut().insert(access);
                }
                Err(status) => {
                    let response = status.into_http();
                    return Box::pin(async move { Ok(response) });
                }
            }
        }
        let future = self.inner.call(request);
        Box::pin(future)
    }
}

impl Keys {
    /// Reloads these keys on every SIGHUP; a file that does not load leaves the
    /// keys in use unchanged.
    pub fn reload_on_hangup(self: Arc<Self>) -> anyhow::Result<()> {
        let keys = self;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = signal(SignalKind::hangup())?;
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match keys.reload() {
                        Ok(count) => tracing::info!(keys = count, "API keys reloaded"),
                        Err(err) => {
                            tracing::error!(
                                "API keys not reloaded, the previous ones stay: {err:#}"
                            )
                        }
                    }
                }
            });
        }
        #[cfg(not(unix))]
        let _ = keys;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[keys]]
        key = "admin-key"
        scope = "admin"

        [[keys]]
        key = "news-reader"
        scope = "read"
        collections = ["news"]
        rate_per_s = 2
    "#;

    fn keys() -> Keys {
        Keys {
            path: PathBuf::new(),
            current: RwLock::new(Arc::new(KeySet::parse(FILE).unwrap())),
        }
    }

    #[test]
    fn scopes_include_the_lesser_ones() {
        let keys = keys();
        let admin = keys
            .authorize(Some(b"Bearer admin-key"), Scope::Admin)
            .unwrap();
        assert!(admin.allows("anything"));
        let reader = keys
            .authorize(Some(b"bearer news-reader"), Scope::Read)
            .unwrap();
        assert!(reader.allows("news"));
        assert!(!reader.allows("other"));
        let denied = keys
            .authorize(Some(b"Bearer news-reader"), Scope::Write)
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("scope write"), "{denied:?}");
    }

    #[test]
    fn missing_malformed_and_unknown_keys_are_unauthenticated() {
        let keys = keys();
        for header in [
            None,
            Some(&b"admin-key"[..]),
            Some(b"Basic admin-key"),
            Some(b"Bearer "),
            Some(b"Bearer admin-ke"),
            Some(b"Bearer admin-key2"),
        ] {
            let err = keys.authorize(header, Scope::Read).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn a_rate_limited_key_is_refused_beyond_its_rate() {
        let keys = keys();
        let codes: Vec<_> = (0..10)
            .map(|_| {
                keys.authorize(Some(b"Bearer news-reader"), Scope::Read)
                    .err()
                    .map(|s| s.code())
            })
            .collect();
        assert_eq!(codes[0], None);
        assert!(
            codes.contains(&Some(tonic::Code::ResourceExhausted)),
            "{codes:?}"
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, reason) in [
            (
                "[[keys]]\nkey = \"k\"\nscope = \"owner\"\n",
                "unknown variant",
            ),
            (
                "[[keys]]\nkey = \"k\"\nscope = \"read\"\ncollection = [\"a\"]\n",
                "unknown field",
            ),
            ("[[keys]]\nkey = \"\"\nscope = \"read\"\n", "empty"),
            ("[[keys]]\nkey = \"a b\"\nscope = \"read\"\n", "printable"),
            (
                "[[keys]]\nkey = \"k\"\nscope = \"read\"\n[[keys]]\nkey = \"k\"\nscope = \"admin\"\n",
                "twice",
            ),
            (
                "[[keys]]\nkey = \"k\"\nscope = \"read\"\nrate_per_s = 0\n",
                "at least 1",
            ),
            ("keys = 3", "invalid type"),
            ("", "no [[keys]]"),
            ("# all keys removed\n", "no [[keys]]"),
            ("[[keys]]\nkey = \"k\"\nsco", "expected"),
        ] {
            let err = format!("{:#}", KeySet::parse(text).err().expect(text));
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    /// A path the method table does not name is refused before any key is
    /// looked at, with keys or without: no default scope.
    #[tokio::test]
    async fn a_method_without_an_entry_is_refused() {
        use tower::{Layer, Service, ServiceExt};
        let reached = tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        for keys in [None, Some(Arc::new(keys()))] {
            let mut service = AuthLayer::new(keys).layer(reached);
            for (path, refused) in [
                ("/trove.v1.DocumentService/DeleteEverything", true),
                ("/trove.v1.Unknown/Search", true),
                ("/grpc.health.v1.Health/Check", false),
            ] {
                let request = http::Request::builder()
                    .uri(path)
                    .header("authorization", "Bearer admin-key")
                    .body(())
                    .unwrap();
                let response = service.ready().await.unwrap().call(request).await.unwrap();
                let status = Status::from_header_map(response.headers());
                assert_eq!(
                    status.map(|s| s.code()),
                    refused.then_some(tonic::Code::Unimplemented),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn methods_need_their_scope_and_health_and_reflection_are_open() {
        assert_eq!(
            methods::method("/grpc.health.v1.Health/Check").and_then(|m| m.scope),
            None
        );
        assert_eq!(
            methods::method("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .and_then(|m| m.scope),
            None
        );
        assert_eq!(
            methods::method("/trove.v1.CollectionService/CreateCollection").and_then(|m| m.scope),
            Some(Scope::Admin)
        );
        assert_eq!(
            methods::method("/trove.v1.CollectionService/ListCollections").and_then(|m| m.scope),
            Some(Scope::Read)
        );
        assert_eq!(
            methods::method("/trove.v1.DocumentService/ImportDocuments").and_then(|m| m.scope),
            Some(Scope::Write)
        );
        assert_eq!(
            methods::method("/trove.v1.SearchService/Search").and_then(|m| m.scope),
            Some(Scope::Read)
        );
        assert_eq!(
            methods::method("/trove.v1.SnapshotService/ListSnapshots").and_then(|m| m.scope),
            Some(Scope::Admin)
        );
    }
}
