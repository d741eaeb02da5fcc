//! Handling Twilio's redeliveries once, across replicas: the claim protocol (claim or wait,
//! a lease renewed while the handler runs, settled from its answer), the store it keeps claims
//! in, and the two stores this crate ships (memory, Redis).

mod memory;
pub(crate) mod protocol;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use memory::MemoryDeliveryStore;
pub use protocol::{DEFAULT_CLAIM_LEASE, DEFAULT_REDELIVERY_WAIT, Deduplication};
#[cfg(feature = "redis")]
pub use redis::RedisDeliveryStore;
pub use store::{Claim, DeliveryStore, StoreError, StoreFuture};
