//! `RedisDeliveryStore` against a real `redis-server` (started by the test on 127.0.0.1):
//! concurrent claims, leases, done vs released, expiry after the window, and Redis stopped and
//! restarted while claims are being made.
#![cfg(feature = "redis")]

use crate::redis_support;

use std::sync::Arc;
use std::time::Duration;

use redis_support::{RedisServer, available};
use twilio_call_messages::webhook::redis::{self, AsyncCommands as _};
use twilio_call_messages::webhook::{Claim, DeliveryStore, RedisDeliveryStore};

const LEASE: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(600);

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_claims_of_one_message_exactly_one_wins() {
    if !available("of_many_concurrent_claims_of_one_message_exactly_one_wins") {
        return;
    }
    let server = RedisServer::start(false);
    // Several stores (as several replicas have), each with its own connection.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(
            RedisDeliveryStore::connect(&server.url()).await.unwrap(),
        ));
    }
    for round in 0..20 {
        let key = format!("KX{round:032}:route");
        let claims: Vec<_> = (0..64)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let key = key.clone();
                tokio::spawn(async move {
                    store
                        .claim(&key, &format!("holder-{i}"), LEASE)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for claim in claims {
            match claim.await.unwrap() {
                Claim::Acquired => won += 1,
                Claim::InProgress => {}
                Claim::Done => panic!("nothing was done"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test]
async fn leases_run_out_and_a_stale_holder_cannot_touch_the_new_claim() {
    if !available("leases_run_out_and_a_stale_holder_cannot_touch_the_new_claim") {
        return;
    }
    let server = RedisServer::start(false);
    let store = RedisDeliveryStore::connect(&server.url())
        .await
        .unwrap()
        .key_prefix("test:");
    let lease = Duration::from_millis(300);
    assert_eq!(store.claim("k", "a", lease).await.unwrap(), Claim::Acquired);
    assert_eq!(
        store.claim("k", "b", lease).await.unwrap(),
        Claim::InProgress
    );
    // Its holder's own claim again (a retried call) is not refused.
    assert_eq!(store.claim("k", "a", lease).await.unwrap(), Claim::Acquired);
    // Renewed: PTTL is back to the lease asked for, under the prefix.
    assert!(store.renew("k", "a", LEASE).await.unwrap());
    let ttl: i64 = raw(&server).await.pttl("test:k").await.unwrap();
    assert!(ttl > 300 && ttl <= 5_000, "{ttl}");
    assert!(store.renew("k", "a", lease).await.unwrap());
    // Not renewed again: once the lease has run out, another holder takes it over.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(store.claim("k", "b", LEASE).await.unwrap(), Claim::Acquired);
    assert!(!store.renew("k", "a", lease).await.unwrap());
    assert!(!store.release("k", "a").await.unwrap());
    assert!(!store.complete("k", "a", WINDOW).await.unwrap());
    assert_eq!(
        store.claim("k", "c", LEASE).await.unwrap(),
        Claim::InProgress
    );
    assert!(store.complete("k", "b", WINDOW).await.unwrap());
    assert_eq!(store.claim("k", "c", LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test]
async fn done_is_kept_for_the_window_released_is_claimable() {
    if !available("done_is_kept_for_the_window_released_is_claimable") {
        return;
    }
    let server = RedisServer::start(false);
    let store = RedisDeliveryStore::connect(&server.url()).await.unwrap();
    assert_eq!(store.claim("r", "a", LEASE).await.unwrap(), Claim::Acquired);
    assert!(store.release("r", "a").await.unwrap());
    assert!(!store.release("r", "a").await.unwrap());
    assert_eq!(store.claim("r", "b", LEASE).await.unwrap(), Claim::Acquired);
    let window = Duration::from_millis(400);
    assert!(store.complete("r", "b", window).await.unwrap());
    assert!(
        !store.release("r", "b").await.unwrap(),
        "done is not released"
    );
    assert!(
        store.complete("r", "b", window).await.unwrap(),
        "done already"
    );
    assert_eq!(store.claim("r", "c", LEASE).await.unwrap(), Claim::Done);
    let mut raw = raw(&server).await;
    let value: String = raw.get("twilio:delivery:r").await.unwrap();
    assert_eq!(value, "d");
    let ttl: i64 = raw.pttl("twilio:delivery:r").await.unwrap();
    assert!(ttl > 0 && ttl <= 400, "{ttl}");
    // After the window the key is gone from Redis and the message is new again.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    let exists: bool = raw.exists("twilio:delivery:r").await.unwrap();
    assert!(!exists);
    assert_eq!(store.claim("r", "c", LEASE).await.unwrap(), Claim::Acquired);
    // Completing a key nobody holds any more (the lease ran out) records the work.
    assert!(store.complete("gone", "z", WINDOW).await.unwrap());
    assert_eq!(store.claim("gone", "y", LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_mid_run_fails_while_down_and_loses_nothing() {
    if !available("redis_stopped_and_restarted_mid_run_fails_while_down_and_loses_nothing") {
        return;
    }
    let mut server = RedisServer::start(true);
    let store = RedisDeliveryStore::connect(&server.url())
        .await
        .unwrap()
        .operation_timeout(Duration::from_millis(500));
    // Before: 100 messages handled (done), 100 in progress.
    for i in 0..100 {
        let key = format!("done-{i}");
        assert_eq!(
            store.claim(&key, "a", LEASE).await.unwrap(),
            Claim::Acquired
        );
        assert!(store.complete(&key, "a", WINDOW).await.unwrap());
        let key = format!("held-{i}");
        assert_eq!(
            store
                .claim(&key, "a", Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::Acquired
        );
    }
    server.stop();
    // While down every operation fails (the extractor's 503), quickly, with no secret.
    for _ in 0..3 {
        let e = store.claim("done-1", "b", LEASE).await.unwrap_err();
        assert!(e.to_string().contains("127.0.0.1"), "{e}");
        assert!(store.complete("held-1", "a", WINDOW).await.is_err());
    }
    server.restart();
    // The manager reconnects on its own; the first operations may still see the old
    // connection fail, as a delivery would (its redelivery wait absorbs this).
    let mut answer = None;
    for _ in 0..100 {
        match store.claim("done-0", "b", LEASE).await {
            Ok(claim) => {
                answer = Some(claim);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(answer, Some(Claim::Done));
    // Nothing lost: every done mark and every claim in progress survived the restart.
    for i in 0..100 {
        assert_eq!(
            store.claim(&format!("done-{i}"), "b", LEASE).await.unwrap(),
            Claim::Done
        );
        assert_eq!(
            store.claim(&format!("held-{i}"), "b", LEASE).await.unwrap(),
            Claim::InProgress
        );
        assert!(
            store
                .complete(&format!("held-{i}"), "a", WINDOW)
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn connection_failures_are_errors_without_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("redis://user:pa55w0rd@127.0.0.1:{port}/0");
    let e = RedisDeliveryStore::connect(&url).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("pa55w0rd"), "{text}");
    assert!(text.contains("user:***@127.0.0.1"), "{text}");

    if !available("connection_failures_are_errors_without_the_password") {
        return;
    }
    let server = RedisServer::start(false);
    let url = server.url().replace("redis://", "redis://:pa55w0rd@");
    // Redis without a password refuses AUTH: an error naming the server, not the password.
    let text = match RedisDeliveryStore::connect(&url).await {
        Ok(store) => format!("{store:?}"),
        Err(e) => format!("{e} {e:?}"),
    };
    assert!(!text.contains("pa55w0rd"), "{text}");
}

#[tokio::test]
async fn rediss_speaks_tls_and_checks_the_certificate() {
    if !available("rediss_speaks_tls_and_checks_the_certificate") {
        return;
    }
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    #[cfg(feature = "rustls-ring")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The system's roots do not know the test CA: refused, as an error (not a panic).
    let url = server.url().replace("rediss://", "rediss://:pa55w0rd@");
    let e = RedisDeliveryStore::connect(&url).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("pa55w0rd"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    // Trusting the test CA, on a connection made by hand: claims work over TLS.
    let client = redis::Client::build_with_tls(
        server.url(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(server.ca_pem()),
        },
    )
    .unwrap();
    let connection = redis::aio::ConnectionManager::new(client).await.unwrap();
    let store = RedisDeliveryStore::from_connection(connection);
    assert_eq!(store.claim("t", "a", LEASE).await.unwrap(), Claim::Acquired);
    assert!(store.complete("t", "a", WINDOW).await.unwrap());
    assert_eq!(store.claim("t", "b", LEASE).await.unwrap(), Claim::Done);
}
