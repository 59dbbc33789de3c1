//! The HTTP server loop: HTTP/1.1 with upgrades (WebSocket), each connection told its peer
//! address, a header read timeout that closes idle and drip-fed connections, a cap on open
//! connections per client address, and a graceful drain.
//!
//! Written over hyper rather than with `axum::serve`, which offers no header read timeout.
//! HTTP/1.1 only: hyper-util's HTTP/1-or-2 detection reads the first bytes with no timeout,
//! so a client sending nothing held its connection forever. TLS and HTTP/2 end at the proxy.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

/// How long requests in flight get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub max_connections_per_ip: usize,
    /// Proxies carry many clients on their connections; they are not capped.
    pub trusted_proxies: Vec<IpNet>,
}

/// Open connections per peer address; a slot is given back when its guard drops.
#[derive(Default, Clone)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot {
    open: OpenConnections,
    ip: IpAddr,
}

impl OpenConnections {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Connections watch `stopping`; each holds a clone of `alive`, so the drain is over when
    // `drained` sees every clone dropped.
    let (stopping, stop_signal) = watch::channel(false);
    let (alive, mut drained) = mpsc::channel::<()>(1);
    let open = OpenConnections::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let ip = peer.ip().to_canonical();
        let proxy = limits.trusted_proxies.iter().any(|net| net.contains(&ip));
        let cap = if proxy {
            usize::MAX
        } else {
            limits.max_connections_per_ip
        };
        let Some(slot) = open.take(ip, cap) else {
            tracing::warn!(client_ip = %ip, "connection refused: too many open from this address");
            continue;
        };
        let service = router.clone().map_request(move |mut request: Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop_signal = stop_signal.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _alive = alive;
            tokio::pin!(connection);
            let result = tokio::select! {
                result = &mut connection => result,
                _ = async { stop_signal.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
    Ok(())
}
