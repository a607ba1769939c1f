//! The one table of the methods this server serves: what each layer needs to
//! know of a method (the scope a key needs, whether it adds data, whether its
//! request is a stream, whether overload may refuse it) is read here. A path
//! the table does not name is not served: every layer refuses it, so a method
//! added to a service without an entry here cannot be called, and a test
//! checks the table against the services' descriptors.

/// What a key may do. Each scope includes the ones before it.
#[derive(Clone, Copy, Debug, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Get, list, search, suggest, analyze.
    Read,
    /// Read, plus document writes.
    Write,
    /// Everything: collections and snapshots too.
    Admin,
}

impl Scope {
    /// The name a key file uses.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// One served method.
#[derive(Debug)]
pub struct Method {
    /// `/package.Service/Method`, as the HTTP/2 path has it.
    pub path: &'static str,
    /// The scope a key needs; `None` for the open services (health, reflection).
    pub scope: Option<Scope>,
    /// Adds data: refused while the server is at its memory limit.
    pub adds_data: bool,
    /// Its request is a stream of messages.
    pub client_streaming: bool,
    /// Counted against the requests in progress, and refused past them
    /// (health is never refused, so that a balancer sees the server alive).
    pub shed: bool,
}

const fn trove(path: &'static str, scope: Scope, adds_data: bool) -> Method {
    Method {
        path,
        scope: Some(scope),
        adds_data,
        client_streaming: false,
        shed: true,
    }
}

const fn open(path: &'static str, client_streaming: bool, shed: bool) -> Method {
    Method {
        path,
        scope: None,
        adds_data: false,
        client_streaming,
        shed,
    }
}

use Scope::{Admin, Read, Write};

/// Every method served.
pub const METHODS: &[Method] = &[
    trove("/trove.v1.CollectionService/CreateCollection", Admin, true),
    trove("/trove.v1.CollectionService/GetCollection", Read, false),
    trove("/trove.v1.CollectionService/ListCollections", Read, false),
    trove("/trove.v1.CollectionService/DeleteCollection", Admin, false),
    trove("/trove.v1.DocumentService/CreateDocument", Write, true),
    trove("/trove.v1.DocumentService/GetDocument", Read, false),
    trove("/trove.v1.DocumentService/UpdateDocument", Write, true),
    trove("/trove.v1.DocumentService/DeleteDocument", Write, false),
    trove("/trove.v1.DocumentService/ListDocuments", Read, false),
    trove("/trove.v1.DocumentService/BatchGetDocuments", Read, false),
    Method {
        client_streaming: true,
        ..trove("/trove.v1.DocumentService/ImportDocuments", Write, true)
    },
    trove("/trove.v1.SearchService/Search", Read, false),
    trove("/trove.v1.SearchService/BatchSearch", Read, false),
    trove("/trove.v1.SearchService/Suggest", Read, false),
    trove("/trove.v1.SearchService/Analyze", Read, false),
    trove("/trove.v1.SnapshotService/CreateSnapshot", Admin, false),
    trove("/trove.v1.SnapshotService/ListSnapshots", Admin, false),
    trove("/trove.v1.SnapshotService/RestoreSnapshot", Admin, true),
    open("/grpc.health.v1.Health/Check", false, false),
    open("/grpc.health.v1.Health/Watch", false, false),
    open(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        true,
        true,
    ),
    open(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        true,
        true,
    ),
];

/// The method at `path`; `None` for a path this server does not serve.
pub fn method(path: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.path == path)
}

/// The services trove itself serves (not health or reflection), as health
/// reports them.
pub fn trove_services() -> Vec<&'static str> {
    let mut services: Vec<&str> = METHODS
        .iter()
        .filter_map(|m| {
            let service = m.path.trim_start_matches('/').split_once('/')?.0;
            service.starts_with("trove.").then_some(service)
        })
        .collect();
    services.dedup();
    services
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// Every method of every service in the descriptor sets the server
    /// registers (trove's, health's and reflection's), as `(path, client
    /// streaming)`.
    fn described() -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for set in [
            crate::api::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let set = prost_types::FileDescriptorSet::decode(set).unwrap();
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        out.push((
                            format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                            method.client_streaming(),
                        ));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_described_method_has_an_entry_and_every_entry_is_described() {
        let described = described();
        for (path, streaming) in &described {
            let method = method(path).unwrap_or_else(|| panic!("{path} has no entry"));
            assert_eq!(method.client_streaming, *streaming, "{path}");
        }
        for method in METHODS {
            assert!(
                described.iter().any(|(p, _)| p == method.path),
                "{} is not a described method",
                method.path
            );
        }
    }

    #[test]
    fn writes_need_a_write_scope_and_reads_add_no_data() {
        for method in METHODS.iter().filter(|m| m.adds_data) {
            assert!(method.scope >= Some(Scope::Write), "{}", method.path);
        }
        assert_eq!(
            trove_services(),
            [
                "trove.v1.CollectionService",
                "trove.v1.DocumentService",
                "trove.v1.SearchService",
                "trove.v1.SnapshotService"
            ]
        );
        assert!(method("/trove.v1.DocumentService/DeleteEverything").is_none());
    }
}
