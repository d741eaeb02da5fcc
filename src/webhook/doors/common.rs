//! What the front doors share: reading a body within the limit, and, for the doors whose
//! extractor and redelivery middleware are apart (axum, actix-web), the claim the middleware
//! leaves for the extractor and the middleware's body.

#[cfg(any(feature = "axum", feature = "actix-web"))]
use std::future::Future;
#[cfg(any(feature = "axum", feature = "actix-web"))]
use std::sync::Arc;

#[cfg(any(feature = "axum", feature = "actix-web"))]
use crate::webhook::Deduplication;
use crate::webhook::WebhookConfig;
#[cfg(any(feature = "axum", feature = "actix-web"))]
use crate::webhook::receiver::{FromEvent, Incoming, admit};
#[cfg(any(feature = "axum", feature = "actix-web"))]
use crate::webhook::redelivery::protocol::Slot;
use crate::webhook::rejection::Rejection;
use crate::webhook::verify::CallbackHeaders;

/// Reads an `http_body` body within the configured limit: refused (413) before reading when its
/// announced length is over it, and as soon as it goes over; 400 when it cannot be read. A
/// refusal is counted and logged here, once.
#[cfg(feature = "tower")]
pub(crate) async fn read_body<B>(
    config: &WebhookConfig,
    headers: &CallbackHeaders<'_>,
    body: B,
) -> Result<bytes::Bytes, Rejection>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::{BodyExt as _, LengthLimitError, Limited};
    let read = async {
        config.refuse_announced(headers)?;
        let limit = config.limit();
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(Rejection::BodyTooLarge { limit })
            }
            Err(_) => Err(Rejection::UnreadableBody),
        }
    };
    read.await.map_err(|rejection| config.refused(rejection))
}

/// [`read_body`] for a stream of chunks (actix-web's `Payload`).
#[cfg(feature = "actix-web")]
pub(crate) async fn read_stream<S, C, E>(
    config: &WebhookConfig,
    headers: &CallbackHeaders<'_>,
    mut chunks: S,
) -> Result<Vec<u8>, Rejection>
where
    S: futures_util::Stream<Item = Result<C, E>> + Unpin,
    C: AsRef<[u8]>,
{
    use futures_util::StreamExt as _;
    let read = async {
        config.refuse_announced(headers)?;
        let limit = config.limit();
        let mut body = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|_| Rejection::UnreadableBody)?;
            let chunk = chunk.as_ref();
            if body.len() + chunk.len() > limit {
                return Err(Rejection::BodyTooLarge { limit });
            }
            body.extend_from_slice(chunk);
        }
        Ok(body)
    };
    read.await.map_err(|rejection| config.refused(rejection))
}

/// What a redelivery middleware leaves in a request (an extension) for the extractor: where to
/// claim the message, and the slot to leave the claim in, which the middleware then renews and
/// settles.
#[cfg(any(feature = "axum", feature = "actix-web"))]
#[derive(Clone)]
pub(crate) struct PendingClaim {
    dedup: Arc<Deduplication>,
    slot: Slot,
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
impl PendingClaim {
    /// A pending claim for one request.
    pub(crate) fn new(dedup: &Arc<Deduplication>) -> Self {
        PendingClaim {
            dedup: dedup.clone(),
            slot: Slot::default(),
        }
    }

    /// The middleware's body: runs `handled` (the rest of the stack, whose extractor claims the
    /// message) while the claim is renewed, and settles it from the answer (2xx: done).
    pub(crate) fn around<T: Answered>(
        self,
        handled: impl Future<Output = T>,
    ) -> impl Future<Output = T> {
        self.slot.run(handled, T::succeeded)
    }
}

/// Steps 1-3 of the protocol for an extractor: the handler's input, its claim left in the
/// middleware's slot when a redelivery middleware wraps the route.
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) async fn extract<E: FromEvent>(
    config: &WebhookConfig,
    pending: Option<&PendingClaim>,
    request: &Incoming<'_>,
) -> Result<E, Rejection> {
    let (input, claim) = admit(config, pending.map(|p| &*p.dedup), request).await?;
    if let (Some(pending), Some(claim)) = (pending, claim) {
        pending.slot.hold(claim);
    }
    Ok(input)
}

/// A framework's answer, as the claim is settled from it: 2xx or not.
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) trait Answered {
    /// Whether the handler answered 2xx.
    fn succeeded(&self) -> bool;
}

#[cfg(feature = "axum")]
impl<B, E> Answered for Result<http::Response<B>, E> {
    fn succeeded(&self) -> bool {
        self.as_ref().is_ok_and(|r| r.status().is_success())
    }
}

#[cfg(feature = "actix-web")]
impl<B> Answered for Result<actix_web::dev::ServiceResponse<B>, actix_web::Error> {
    fn succeeded(&self) -> bool {
        self.as_ref().is_ok_and(|r| r.status().is_success())
    }
}
