//! The bare tonic server: `DocumentService/GetDocument` answering one fixed
//! document, with nothing behind it. What the gRPC stack alone can do.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use trove::api::pb;
use trove::api::pb::document_service_server::{DocumentService, DocumentServiceServer};

struct Fixed {
    document: Arc<pb::Document>,
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
/// transport settings (TCP_NODELAY).
pub async fn serve(listen: std::net::SocketAddr, document: pb::Document) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(DocumentServiceServer::new(Fixed {
            document: Arc::new(document),
        }))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
