//! gRPC server reflection, built on first use.
//!
//! go-plugin registers reflection on every plugin, and so does goplug; but
//! building its index decodes every registered descriptor set, which was
//! half of a plugin's user-space work before its handshake. Hosts rarely
//! ask (tools like grpcurl and `goplug call` do), so the index is built
//! by the first reflection request instead.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;

type Built<S> = Arc<OnceLock<Result<S, String>>>;

/// A service built by `build` on its first request; a build error answers
/// every request with `Internal`.
pub(crate) struct Lazy<S, F> {
    built: Built<S>,
    build: Arc<F>,
}

impl<S, F> Clone for Lazy<S, F> {
    fn clone(&self) -> Self {
        Self {
            built: self.built.clone(),
            build: self.build.clone(),
        }
    }
}

impl<S, F> Lazy<S, F>
where
    F: Fn() -> Result<S, String>,
{
    pub(crate) fn new(build: F) -> Self {
        Self {
            built: Arc::new(OnceLock::new()),
            build: Arc::new(build),
        }
    }
}

impl<S: NamedService, F> NamedService for Lazy<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F> tower::Service<http::Request<Body>> for Lazy<S, F>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    F: Fn() -> Result<S, String>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    /// Always ready: tonic's generated servers are.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self.built.get_or_init(|| (self.build)()) {
            Ok(service) => Box::pin(service.clone().call(request)),
            Err(reason) => {
                let status = tonic::Status::internal(format!("reflection: {reason}"));
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

impl<S, F> std::fmt::Debug for Lazy<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &self.built.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::Service;

    fn request() -> http::Request<Body> {
        http::Request::builder()
            .uri("/grpc.health.v1.Health/Check")
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn built_once_on_the_first_request_and_shared_by_clones() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy = Lazy::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(tonic_health::server::health_reporter().1)
        });
        assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing built up front");
        for mut service in [lazy.clone(), lazy.clone(), lazy] {
            let response = service.call(request()).await.unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_build_answers_internal() {
        let mut lazy = Lazy::new(|| {
            Err::<
                tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
                _,
            >("bad descriptor set".to_owned())
        });
        let response = lazy.call(request()).await.unwrap();
        let status = tonic::Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "reflection: bad descriptor set");
    }
}
