//! `trove.v1.DocumentService`.

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::{collection_name, doc_id};
use crate::api::OrStatus as _;
use crate::api::page_size;
use crate::api::served as pb;
use crate::api::served::document_service_server::DocumentService;
use crate::api::{self, paging};
use crate::engine::{
    Collection, DocId, Engine, EngineError, Fields, Patch, ResponseBudget, Update,
};
use crate::middleware::auth::{Access, check_access, check_collection};
use crate::middleware::shed::MemoryLimit;

/// Documents applied per lock acquisition during an import.
const IMPORT_BATCH: usize = 512;
/// The most ids one BatchGetDocuments may ask for.
const MAX_BATCH_GET: usize = 1000;

/// Serves `DocumentService` from the engine.
pub struct DocumentHandler {
    pub engine: Arc<Engine>,
}

impl DocumentHandler {
    /// The collection a request's `collection` field names.
    fn collection(&self, name: &str) -> Result<Arc<Collection>, Status> {
        self.engine
            .collection(&collection_name(name, "collection")?)
            .or_status()
    }
}

#[tonic::async_trait]
impl DocumentService for DocumentHandler {
    async fn create_document(
        &self,
        request: Request<pb::CreateDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::CreateDocumentRequest {
            collection,
            document,
            async_visibility,
            request_id,
        } = request.into_inner();
        let collection = self.collection(&collection)?;
        let (id, fields) = api::document_parts(document, "document")?;
        let id = optional_id(&id, "document.id")?;
        let doc = collection
            .create(id, fields, !async_visibility, &request_id)
            .await
            .map_err(api::in_document)
            .or_status()?;
        Ok(Response::new(api::wire_document(doc)))
    }

    async fn get_document(
        &self,
        request: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::GetDocumentRequest { collection, id } = request.into_inner();
        let collection = self.collection(&collection)?;
        let doc = collection.get(&doc_id(&id, "id")?).or_status()?;
        Ok(Response::new(api::wire_document(doc)))
    }

    async fn update_document(
        &self,
        request: Request<pb::UpdateDocumentRequest>,
    ) -> Result<Response<pb::Document>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::UpdateDocumentRequest {
            collection,
            document,
            update_mask,
            merge,
            allow_missing,
            expected_version,
            async_visibility,
            request_id,
        } = request.into_inner();
        let collection = self.collection(&collection)?;
        let (id, fields) = api::document_parts(document, "document")?;
        let id = doc_id(&id, "document.id")?;
        let keys = api::mask_keys(update_mask.unwrap_or_default())?;
        let patch = match (merge, keys.is_empty()) {
            (true, false) => {
                return Err(api::status_from(EngineError::invalid(
                    "update_mask",
                    "update_mask and merge cannot be combined",
                )));
            }
            (true, true) => Patch::Merge,
            (false, true) => Patch::Replace,
            (false, false) => Patch::Keys(keys),
        };
        let update = Update {
            id,
            fields,
            patch,
            allow_missing,
            expected_version,
        };
        let doc = collection
            .update(update, !async_visibility, &request_id)
            .await
            .map_err(api::in_document)
            .or_status()?;
        Ok(Response::new(api::wire_document(doc)))
    }

    async fn delete_document(
        &self,
        request: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<()>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::DeleteDocumentRequest {
            collection,
            id,
            expected_version,
            async_visibility,
            request_id,
        } = request.into_inner();
        let collection = self.collection(&collection)?;
        let id = doc_id(&id, "id")?;
        collection
            .delete(id, expected_version, !async_visibility, &request_id)
            .await
            .or_status()?;
        Ok(Response::new(()))
    }

    async fn list_documents(
        &self,
        request: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::ListDocumentsRequest {
            collection,
            page_size: size,
            page_token,
        } = request.into_inner();
        let collection = self.collection(&collection)?;
        let limit = page_size(size)?;
        let after = paging::decode_after(&page_token)?
            .map(|id| doc_id(&id, "page_token"))
            .transpose()?;
        let mut documents = collection.list(after.as_ref(), limit + 1).or_status()?;
        let next_page_token = paging::next_token(&mut documents, limit, |d| d.id.to_string());
        Ok(Response::new(pb::ListDocumentsResponse {
            documents: documents.into_iter().map(api::wire_document).collect(),
            next_page_token,
        }))
    }

    async fn batch_get_documents(
        &self,
        request: Request<pb::BatchGetDocumentsRequest>,
    ) -> Result<Response<pb::BatchGetDocumentsResponse>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::BatchGetDocumentsRequest { collection, ids } = request.into_inner();
        let collection = self.collection(&collection)?;
        if ids.len() > MAX_BATCH_GET {
            return Err(api::status_from(EngineError::invalid(
                "ids",
                format!("{} ids requested; the limit is {MAX_BATCH_GET}", ids.len()),
            )));
        }
        let mut budget = ResponseBudget::new("ids");
        let documents = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let id = doc_id(id, &format!("ids[{i}]"))?;
                Ok(api::wire_document(
                    collection.get_within(&id, &mut budget).or_status()?,
                ))
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::BatchGetDocumentsResponse { documents }))
    }

    async fn import_documents(
        &self,
        request: Request<Streaming<pb::ImportDocumentsRequest>>,
    ) -> Result<Response<pb::ImportDocumentsResponse>, Status> {
        let access = request.extensions().get::<Access>().cloned();
        let memory = request.extensions().get::<Arc<MemoryLimit>>().cloned();
        let mut stream = request.into_inner();
        let mut collection = None;
        let mut wait = true;
        let mut response = pb::ImportDocumentsResponse::default();
        let mut batch: Vec<(i64, Option<DocId>, Fields)> = Vec::with_capacity(IMPORT_BATCH);
        let mut index: i64 = 0;
        loop {
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => {
                    // The stream broke off: keep what arrived whole, then report.
                    if let Some(target) = &collection {
                        apply_batch(target, &mut batch, &mut response).await?;
                    }
                    return Err(transport_status(status));
                }
            };
            let pb::ImportDocumentsRequest {
                collection: name,
                document,
                async_visibility,
            } = message;
            let target = match &collection {
                None => {
                    check_access(access.as_ref(), &name)?;
                    let target = self
                        .engine
                        .collection(&collection_name(&name, "collection")?)
                        .or_status()?;
                    wait = !async_visibility;
                    collection.insert(target)
                }
                Some(target) => target,
            };
            let parsed = if name.is_empty() || name == target.name().as_str() {
                api::document_parts(document, "document")
                    .and_then(|(id, fields)| Ok((optional_id(&id, "document.id")?, fields)))
            } else {
                Err(api::status_from(EngineError::invalid(
                    "collection",
                    format!(
                        "this import writes to {:?}, not {name:?}",
                        target.name().as_str()
                    ),
                )))
            };
            match parsed {
                Ok((id, fields)) => batch.push((index, id, fields)),
                Err(status) => record_failure(&mut response, index, String::new(), &status),
            }
            index += 1;
            if batch.len() >= IMPORT_BATCH {
                if let Some(memory) = &memory {
                    memory.check()?;
                }
                let target = target.clone();
                apply_batch(&target, &mut batch, &mut response).await?;
            }
        }
        if let Some(target) = collection {
            apply_batch(&target, &mut batch, &mut response).await?;
            if wait {
                target.refresh().await.or_status()?;
            }
        }
        // Decoding failures are recorded as they arrive, engine failures per batch.
        response.failures.sort_by_key(|f| f.index);
        Ok(Response::new(response))
    }
}

/// An optional document id: empty means the server generates one.
fn optional_id(id: &str, field: &str) -> Result<Option<DocId>, Status> {
    if id.is_empty() {
        Ok(None)
    } else {
        doc_id(id, field).map(Some)
    }
}

async fn apply_batch(
    collection: &Arc<Collection>,
    batch: &mut Vec<(i64, Option<DocId>, Fields)>,
    response: &mut pb::ImportDocumentsResponse,
) -> Result<(), Status> {
    if batch.is_empty() {
        return Ok(());
    }
    let items: Vec<(i64, Option<DocId>, Fields)> = std::mem::take(batch);
    let ids: Vec<(i64, String)> = items
        .iter()
        .map(|(i, id, _)| (*i, id.as_ref().map(|d| d.to_string()).unwrap_or_default()))
        .collect();
    let results = collection
        .import(
            items
                .into_iter()
                .map(|(_, id, fields)| (id, fields))
                .collect(),
        )
        .await
        .or_status()?;
    for ((index, id), result) in ids.into_iter().zip(results) {
        match result {
            Ok(_) => response.imported_count += 1,
            Err(err) => record_failure(response, index, id, &api::status_from(err)),
        }
    }
    Ok(())
}

fn record_failure(
    response: &mut pb::ImportDocumentsResponse,
    index: i64,
    id: String,
    status: &Status,
) {
    response.failed_count += 1;
    response.failures.push(pb::ImportFailure {
        index,
        id,
        code: status.code() as i32,
        message: status.message().to_owned(),
    });
}

/// A stream error from tonic (decode failure, oversized message) with the code
/// clients expect.
fn transport_status(status: Status) -> Status {
    match api::map_transport_status(status.code(), status.message()) {
        Some((code, message)) => Status::new(code, message),
        None => status,
    }
}
