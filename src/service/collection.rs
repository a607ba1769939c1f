//! `trove.v1.CollectionService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::collection_name;
use crate::api;
use crate::api::OrStatus as _;
use crate::api::page_size;
use crate::api::paging;
use crate::api::served as pb;
use crate::api::served::collection_service_server::CollectionService;
use crate::engine::{CollectionSchema, Engine};
use crate::middleware::auth::{Access, check_access, check_collection};

/// Serves `CollectionService` from the engine.
pub struct CollectionHandler {
    pub engine: Arc<Engine>,
}

#[tonic::async_trait]
impl CollectionService for CollectionHandler {
    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::Collection>, Status> {
        let access = request.extensions().get::<Access>().cloned();
        let pb::CreateCollectionRequest {
            collection,
            request_id,
        } = request.into_inner();
        let pb::Collection {
            name,
            fields,
            synonyms,
            // Output only.
            document_count: _,
            memory_bytes: _,
            create_time: _,
        } = collection.ok_or_else(|| {
            api::status_from(crate::engine::EngineError::invalid(
                "collection",
                "collection is required",
            ))
        })?;
        check_access(access.as_ref(), &name)?;
        let name = collection_name(&name, "collection.name")?;
        let specs = api::field_specs(fields)?;
        // Synonym sets may be large (a request of megabytes): parsed off the
        // async workers.
        let schema = tokio::task::spawn_blocking(move || {
            CollectionSchema::new(&specs)
                .and_then(|schema| schema.with_synonyms(&synonyms))
                .map_err(|e| e.within("collection"))
        })
        .await
        .map_err(|e| crate::engine::EngineError::Internal(format!("schema task failed: {e}")))
        .or_status()?
        .or_status()?;
        let created = self
            .engine
            .create_collection(name, schema, &request_id)
            .await
            .or_status()?;
        Ok(Response::new(api::wire_collection(&created)))
    }

    async fn get_collection(
        &self,
        request: Request<pb::GetCollectionRequest>,
    ) -> Result<Response<pb::Collection>, Status> {
        check_collection(&request, &request.get_ref().name)?;
        let name = collection_name(&request.get_ref().name, "name")?;
        let collection = self.engine.collection(&name).or_status()?;
        Ok(Response::new(api::wire_collection(&collection)))
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let access = request.extensions().get::<Access>().cloned();
        let pb::ListCollectionsRequest {
            page_size: size,
            page_token,
        } = request.into_inner();
        let limit = page_size(size)?;
        let after = paging::decode_after(&page_token)?
            .map(|name| collection_name(&name, "page_token"))
            .transpose()?;
        let mut collections = match access {
            // A key limited to some collections sees only those.
            Some(access) if access.collections.is_some() => {
                let mut all = self
                    .engine
                    .list_collections(after.as_ref(), usize::MAX)
                    .or_status()?;
                all.retain(|c| access.allows(c.name().as_str()));
                all.truncate(limit + 1);
                all
            }
            _ => self
                .engine
                .list_collections(after.as_ref(), limit + 1)
                .or_status()?,
        };
        let next_page_token = paging::next_token(&mut collections, limit, |c| c.name().to_string());
        Ok(Response::new(pb::ListCollectionsResponse {
            collections: collections
                .iter()
                .map(|c| api::wire_collection(c))
                .collect(),
            next_page_token,
        }))
    }

    async fn delete_collection(
        &self,
        request: Request<pb::DeleteCollectionRequest>,
    ) -> Result<Response<()>, Status> {
        check_collection(&request, &request.get_ref().name)?;
        let pb::DeleteCollectionRequest { name, request_id } = request.into_inner();
        let name = collection_name(&name, "name")?;
        self.engine
            .delete_collection(&name, &request_id)
            .await
            .or_status()?;
        Ok(Response::new(()))
    }
}
