//! The bare tonic server: `DocumentService/GetDocument` answering one fixed
//! document, with nothing behind it. What the gRPC stack alone can do.
//!
//! Given a stored document (compressed as trove stores it), it decompresses
//! that before each answer, and nothing else: what the compression alone costs
//! a point read.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use trove::api::pb;
use trove::api::pb::document_service_server::{DocumentService, DocumentServiceServer};
use trove::engine::{Dictionary, StoredDoc};

struct Fixed {
    document: Arc<pb::Document>,
    read: Option<Arc<StoredDoc>>,
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented(
        "the bare server answers GetDocument only",
    ))
}

#[tonic::async_trait]
impl DocumentService for Fixed {
    async fn get_document(
        &self,
        _request: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        if let Some(stored) = &self.read {
            let json = stored.json().map_err(|e| Status::internal(e.to_string()))?;
            std::hint::black_box(json);
        }
        Ok(Response::new((*self.document).clone()))
    }

    async fn create_document(
        &self,
        _request: Request<pb::CreateDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        unimplemented()
    }

    async fn update_document(
        &self,
        _request: Request<pb::UpdateDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        unimplemented()
    }

    async fn delete_document(
        &self,
        _request: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<()>, Status> {
        unimplemented()
    }

    async fn list_documents(
        &self,
        _request: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        unimplemented()
    }

    async fn batch_get_documents(
        &self,
        _request: Request<pb::BatchGetDocumentsRequest>,
    ) -> Result<Response<pb::BatchGetDocumentsResponse>, Status> {
        unimplemented()
    }

    async fn import_documents(
        &self,
        _request: Request<Streaming<pb::ImportDocumentsRequest>>,
    ) -> Result<Response<pb::ImportDocumentsResponse>, Status> {
        unimplemented()
    }
}

/// Serves the fixed `document` on `listen` until killed, with trove's
/// transport settings (TCP_NODELAY, its HTTP/2 stream limit and keep-alive
/// pings), decompressing `read` before each answer if given.
pub async fn serve(
    listen: std::net::SocketAddr,
    document: pb::Document,
    read: Option<StoredDoc>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    trove::server::transport(trove::config::DEFAULT_MAX_CONCURRENT_STREAMS)
        .add_service(DocumentServiceServer::new(Fixed {
            document: Arc::new(document),
            read: read.map(Arc::new),
        }))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// The stored document whose compressed body is in `body`, compressed with
/// the dictionary in `dictionary` if given.
pub fn stored_doc(
    body: &std::path::Path,
    dictionary: Option<&std::path::Path>,
) -> anyhow::Result<StoredDoc> {
    let dictionary = match dictionary {
        None => None,
        Some(path) => Some(Arc::new(Dictionary::from_bytes(std::fs::read(path)?)?)),
    };
    let stored = StoredDoc::from_parts(0, 0, 0, std::fs::read(body)?, |id| {
        dictionary.clone().filter(|d| d.id() == id)
    })?;
    Ok(stored)
}
