//! [`RedisDeliveryStore`]: delivery claims shared by every replica, in Redis.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, Script};

use super::store::{Claim, DeliveryStore, StoreError, StoreFuture};

/// The default key prefix.
const DEFAULT_PREFIX: &str = "twilio:delivery:";

/// The default bound on one store operation (one round trip, plus reconnecting).
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

// One small Lua script per operation: Redis runs a script atomically, so no other client's
// command interleaves between its GET and its SET (https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
// A key holds "p:<holder>" while in progress (expiring with the lease) and "d" once done
// (expiring with the window). PX takes milliseconds.

/// KEYS[1] key, ARGV[1] holder, ARGV[2] lease ms -> 1 acquired, 0 in progress, 2 done.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v or v == 'p:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == 'd' then return 2 end
return 0
",
    )
});

/// KEYS[1] key, ARGV[1] holder, ARGV[2] lease ms -> 1 renewed, 0 not held.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS[1] key, ARGV[1] holder, ARGV[2] window ms -> 1 done, 0 taken over by another holder.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v == 'd' then return 1 end
if not v or v == 'p:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'd', 'PX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS[1] key, ARGV[1] holder -> 1 released, 0 not held.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});

/// A [`DeliveryStore`] in Redis, shared by every replica of a service (feature `redis`).
///
/// Each operation is one Lua script (atomic in Redis) on one key, `<prefix><Sid>:<route hash>`:
/// `p:<holder>` while in progress, with the lease as its expiry, then `d` for the dedup window.
/// The connection is redis-rs's [`ConnectionManager`]: one multiplexed connection shared by
/// every request, reconnected in the background after an error. Every operation is bounded by
/// [`operation_timeout`](Self::operation_timeout); a failure (Redis down, a timeout) makes the
/// receiver retry within its redelivery wait and then answer 503, so that Twilio retries.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::{sync::Arc, time::Duration};
/// use twilio_call_messages::webhook::{Deduplication, RedisDeliveryStore};
///
/// let store = RedisDeliveryStore::connect("redis://127.0.0.1:6379/0").await?;
/// // For a `Receiver`, axum's `DeliveryLayer` or actix-web's `Deliveries`.
/// let dedup = Deduplication::with_store(Duration::from_secs(600), Arc::new(store));
/// # Ok(()) }
/// ```
///
/// **Durable "done" marks.** A Redis that restarts without persistence forgets every claim:
/// redeliveries within the window are then handled again. Run Redis with the append-only file,
/// `appendonly yes`; with `appendfsync everysec` (Redis's default) a crash of Redis itself
/// (not a restart or `SHUTDOWN`, which write everything) can lose the last second of marks,
/// `appendfsync always` none at the cost of a disk sync per write
/// (<https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/>). A replicated
/// Redis that fails over can lose the writes not yet replicated, the same way. Claims expire
/// on their own, so no `maxmemory` eviction policy is needed beyond `volatile-*` or
/// `noeviction`.
///
/// `rediss://` URLs connect with TLS through rustls, with the system's root certificates. With
/// the crate's `native-tls` feature and none of its rustls ones, install a rustls
/// `CryptoProvider` for the process first.
#[derive(Clone)]
pub struct RedisDeliveryStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// What `Debug` and the logs show of the server: the URL without its password.
    server: String,
}

impl fmt::Debug for RedisDeliveryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDeliveryStore")
            .field("server", &self.server)
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisDeliveryStore {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS),
    /// waiting for the first connection; reconnects on its own afterwards.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let server = redact(url);
        let fail = |what: &str, e: RedisError| {
            StoreError(format!("{what} {server}: {}", describe(&e)).into())
        };
        #[cfg(feature = "rustls-ring")]
        if url.starts_with("rediss:") {
            // As the HTTP client does: ring becomes the process's provider only if none is.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = ::redis::Client::open(url).map_err(|e| fail("invalid Redis URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_OPERATION_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_OPERATION_TIMEOUT))
            // Reconnect quickly after a Redis restart: 50 ms, then doubling up to 1 s.
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| fail("cannot connect to", e))?;
        let mut store = Self::from_connection(connection);
        store.server = server;
        Ok(store)
    }

    /// A store on a connection you made (e.g. shared with the rest of your service).
    pub fn from_connection(connection: ConnectionManager) -> Self {
        RedisDeliveryStore {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
            server: "(an existing connection)".to_owned(),
        }
    }

    /// The prefix of every key (default `twilio:delivery:`), e.g. one per service sharing a
    /// Redis.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one operation may take (default 1 s), after which it fails.
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs `script` on `key` with `args`, bounded by the operation timeout.
    async fn run(&self, script: &Script, key: &str, args: &[&str]) -> Result<i64, StoreError> {
        let mut invocation = script.key(format!("{}{key}", self.prefix));
        for arg in args {
            invocation.arg(*arg);
        }
        // A clone of the manager shares its one connection.
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(StoreError(
                format!("Redis at {}: {}", self.server, describe(&e)).into(),
            )),
            Err(_) => Err(StoreError(
                format!(
                    "Redis at {}: no answer within {:?}",
                    self.server, self.timeout
                )
                .into(),
            )),
        }
    }
}

fn millis(d: Duration) -> String {
    // PX needs at least 1 ms.
    d.as_millis().max(1).to_string()
}

impl DeliveryStore for RedisDeliveryStore {
    fn claim<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            match self.run(&CLAIM, key, &[holder, &millis(lease)]).await? {
                1 => Ok(Claim::Acquired),
                2 => Ok(Claim::Done),
                _ => Ok(Claim::InProgress),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.run(&RENEW, key, &[holder, &millis(lease)]).await? == 1) })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        window: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(
            async move { Ok(self.run(&COMPLETE, key, &[holder, &millis(window)]).await? == 1) },
        )
    }

    fn release<'a>(&'a self, key: &'a str, holder: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.run(&RELEASE, key, &[holder]).await? == 1) })
    }
}

/// A Redis error without anything from the URL: its kind and message (redis-rs does not put
/// credentials in errors; the URL is never part of ours but redacted).
fn describe(e: &RedisError) -> String {
    e.to_string()
}

/// `url` with its password (and any query, which may carry one) replaced by `***`.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            if parsed.query().is_some() {
                parsed.set_query(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redact("redis://user:s3cret@cache.internal:6380/2"),
            "redis://user:***@cache.internal:6380/2"
        );
        assert_eq!(
            redact("rediss://:s3cret@cache.internal"),
            "rediss://:***@cache.internal"
        );
        assert_eq!(
            redact("redis://127.0.0.1:6379/0?password=s3cret"),
            "redis://127.0.0.1:6379/0?***"
        );
        assert_eq!(redact("s3cret not a url"), "(an unparsable URL)");
        assert_eq!(millis(Duration::from_micros(10)), "1");
    }
}
