//! When responses are compressed (`--compress-responses`). tonic compresses a
//! response whenever the request's `grpc-accept-encoding` names an encoding
//! the service sends; this layer takes that header away from requests whose
//! responses the policy leaves uncompressed, before tonic reads it.

use http::header::HeaderValue;
use tower::util::MapRequestLayer;

use crate::config::CompressResponses;

const ACCEPT_ENCODING: &str = "grpc-accept-encoding";
const ENCODING: &str = "grpc-encoding";

/// The layer applying `policy` to each request.
pub fn layer<B>(
    policy: CompressResponses,
) -> MapRequestLayer<impl Fn(http::Request<B>) -> http::Request<B> + Clone> {
    MapRequestLayer::new(move |mut request: http::Request<B>| {
        if !compresses(policy, request.headers().get(ENCODING)) {
            request.headers_mut().remove(ACCEPT_ENCODING);
        }
        request
    })
}

/// Whether a response may be compressed, given the request's own encoding.
fn compresses(policy: CompressResponses, request_encoding: Option<&HeaderValue>) -> bool {
    match policy {
        CompressResponses::Always => true,
        CompressResponses::Never => false,
        CompressResponses::Auto => {
            request_encoding.is_some_and(|encoding| encoding.as_bytes() != b"identity")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_compresses_for_clients_that_compress() {
        let gzip = HeaderValue::from_static("gzip");
        let identity = HeaderValue::from_static("identity");
        use CompressResponses::*;
        assert!(compresses(Auto, Some(&gzip)));
        assert!(!compresses(Auto, Some(&identity)));
        assert!(!compresses(Auto, None));
        assert!(compresses(Always, None));
        assert!(!compresses(Never, Some(&gzip)));
    }
}
