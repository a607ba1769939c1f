//! Calling trove from a Rust service: the generated tonic clients and wire
//! types are in `trove_client::pb`.
//!
//! ```sh
//! cargo run --release &                      # a server with the seeded `news`
//! cargo run -p trove-client --example search -- http://127.0.0.1:50051
//! ```

use trove_client::pb;
use trove_client::pb::search_service_client::SearchServiceClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let mut search = SearchServiceClient::connect(addr).await?;
    let request = pb::SearchRequest {
        collection: "news".into(),
        query: "taliban embassy".into(),
        page_size: 5,
        read_mask: Some(prost_types::FieldMask {
            paths: vec!["id".into(), "fields.title".into()],
        }),
        ..Default::default()
    };
    match search.search(request).await {
        Ok(response) => {
            let response = response.into_inner();
            println!("{} matches", response.total_size);
            for hit in response.hits {
                println!("{:.3} {}", hit.score, hit.id);
            }
        }
        // A precise code and message: INVALID_ARGUMENT with a BadRequest
        // detail naming the field, NOT_FOUND, RESOURCE_EXHAUSTED, …
        Err(status) => eprintln!("{:?}: {}", status.code(), status.message()),
    }
    Ok(())
}
