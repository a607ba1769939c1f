//! `trove.v1.SearchService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::collection_name;
use crate::api::pb::search_service_server::SearchService;
use crate::api::{self, pb};
use crate::engine::Engine;

/// Serves `SearchService` from the engine.
pub struct SearchHandler {
    pub engine: Arc<Engine>,
}

#[tonic::async_trait]
impl SearchService for SearchHandler {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let (collection, search, mask) = api::search_request(request.into_inner())?;
        let name = collection_name(&collection, "collection")?;
        let results = self.engine.search(&name, search).await?;
        Ok(Response::new(api::search_response(results, &mask)))
    }
}
