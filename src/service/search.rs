//! `trove.v1.SearchService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::collection_name;
use crate::api;
use crate::api::served as pb;
use crate::api::served::search_service_server::SearchService;
use crate::api::{OrStatus as _, status_from};
use crate::engine::{Analyzer, Engine, EngineError};
use crate::middleware::auth::check_collection;

/// The longest text Analyze accepts, in bytes.
const MAX_ANALYZE_BYTES: usize = 1 << 20;

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
        check_collection(&request, &request.get_ref().collection)?;
        let (collection, search, mask) = api::search_request(request.into_inner())?;
        let name = collection_name(&collection, "collection")?;
        let results = self.engine.search(&name, search).await.or_status()?;
        Ok(Response::new(api::search_response(results, &mask)))
    }

    async fn batch_search(
        &self,
        request: Request<pb::BatchSearchRequest>,
    ) -> Result<Response<pb::BatchSearchResponse>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::BatchSearchRequest {
            collection,
            searches,
        } = request.into_inner();
        let name = collection_name(&collection, "collection")?;
        let mut requests = Vec::with_capacity(searches.len());
        let mut masks = Vec::with_capacity(searches.len());
        for (i, search) in searches.into_iter().enumerate() {
            let path = format!("searches[{i}]");
            if !search.collection.is_empty() && search.collection != collection {
                return Err(status_from(EngineError::invalid(
                    format!("{path}.collection"),
                    format!(
                        "{:?} is not the batch's collection {collection:?}: leave it empty",
                        search.collection
                    ),
                )));
            }
            let (_, search, mask) =
                api::search_request(search).map_err(|status| api::within_status(status, &path))?;
            requests.push(search);
            masks.push(mask);
        }
        let results = self
            .engine
            .search_batch(&name, requests)
            .await
            .or_status()?;
        Ok(Response::new(pb::BatchSearchResponse {
            responses: results
                .into_iter()
                .zip(&masks)
                .map(|(results, mask)| api::search_response(results, mask))
                .collect(),
        }))
    }

    async fn suggest(
        &self,
        request: Request<pb::SuggestRequest>,
    ) -> Result<Response<pb::SuggestResponse>, Status> {
        check_collection(&request, &request.get_ref().collection)?;
        let pb::SuggestRequest {
            collection,
            prefix,
            field,
            limit,
        } = request.into_inner();
        let name = collection_name(&collection, "collection")?;
        let suggestions = self
            .engine
            .suggest(&name, prefix, field, limit)
            .await
            .or_status()?;
        Ok(Response::new(pb::SuggestResponse {
            suggestions: suggestions
                .into_iter()
                .map(|(text, count)| pb::Suggestion {
                    text,
                    count: count as i64,
                })
                .collect(),
        }))
    }

    async fn analyze(
        &self,
        request: Request<pb::AnalyzeRequest>,
    ) -> Result<Response<pb::AnalyzeResponse>, Status> {
        if !request.get_ref().collection.is_empty() {
            check_collection(&request, &request.get_ref().collection)?;
        }
        let pb::AnalyzeRequest {
            analyzer,
            collection,
            field,
            text,
        } = request.into_inner();
        if text.len() > MAX_ANALYZE_BYTES {
            return Err(status_from(EngineError::invalid(
                "text",
                format!(
                    "text is {} bytes long; the limit is {MAX_ANALYZE_BYTES}",
                    text.len()
                ),
            )));
        }
        let tokens = match (analyzer.as_str(), collection.is_empty()) {
            ("", false) => {
                let name = collection_name(&collection, "collection")?;
                self.engine
                    .analyze_field(&name, &field, &text)
                    .or_status()?
            }
            ("", true) => {
                return Err(status_from(EngineError::invalid(
                    "analyzer",
                    "name an analyzer, or a collection and field",
                )));
            }
            (name, _) => {
                let analyzer = Analyzer::from_name(name)
                    .ok_or_else(|| {
                        EngineError::invalid(
                            "analyzer",
                            format!(
                                "unknown analyzer {name:?}; known: {}",
                                Analyzer::known_names()
                            ),
                        )
                    })
                    .or_status()?;
                crate::engine::analyze(analyzer, &text)
            }
        };
        Ok(Response::new(pb::AnalyzeResponse {
            tokens: api::wire_tokens(tokens),
        }))
    }
}
