//! Live progress events: workers publish what happens to runs, API replicas relay them to
//! the owners' WebSockets. Redis pub/sub when distributed, an in-process channel embedded.
//! Delivery is at most once: a client that misses events re-reads the batch status.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::queue::RedisQueue;

/// The channel suffix events travel on, under the deployment's Redis prefix.
pub const CHANNEL: &str = "events";

/// One event in the envelope clients know: `{type, negotiationId, data}`. `queue_id` names
/// the batch, whose owner alone may receive it; relays look the owner up themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub negotiation_id: String,
    pub queue_id: String,
    pub data: Value,
}

impl RunEvent {
    pub fn new(kind: &str, negotiation_id: &str, queue_id: &str, mut data: Value) -> Self {
        if let Value::Object(map) = &mut data {
            map.insert("queueId".into(), Value::String(queue_id.to_string()));
        }
        Self {
            kind: kind.to_string(),
            negotiation_id: negotiation_id.to_string(),
            queue_id: queue_id.to_string(),
            data,
        }
    }
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Best effort: a lost event is logged, never an error for the run.
    async fn publish(&self, event: RunEvent);
    /// Every event published from now on, across processes.
    async fn subscribe(&self) -> anyhow::Result<BoxStream<'static, RunEvent>>;
}

/// Events within one process (the embedded default).
pub struct MemoryEvents {
    sender: broadcast::Sender<RunEvent>,
}

impl MemoryEvents {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(4096).0,
        }
    }
}

impl Default for MemoryEvents {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for MemoryEvents {
    async fn publish(&self, event: RunEvent) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    async fn subscribe(&self) -> anyhow::Result<BoxStream<'static, RunEvent>> {
        let receiver = self.sender.subscribe();
        Ok(
            futures::stream::unfold(receiver, |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((event, receiver)),
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "event relay fell behind");
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            })
            .boxed(),
        )
    }
}

/// Events over Redis pub/sub on `{prefix}:events`.
pub struct RedisEvents {
    queue: RedisQueue,
    url: String,
    channel: String,
}

impl RedisEvents {
    pub fn new(queue: RedisQueue, url: &str, prefix: &str) -> Self {
        Self {
            queue,
            url: url.to_string(),
            channel: format!("{prefix}:{CHANNEL}"),
        }
    }
}

#[async_trait]
impl EventBus for RedisEvents {
    async fn publish(&self, event: RunEvent) {
        let Ok(message) = serde_json::to_string(&event) else {
            return;
        };
        if let Err(error) = self.queue.publish(CHANNEL, &message).await {
            tracing::debug!(%error, kind = %event.kind, "event not published");
        }
    }

    async fn subscribe(&self) -> anyhow::Result<BoxStream<'static, RunEvent>> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut pubsub =
            tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub()).await??;
        pubsub.subscribe(&self.channel).await?;
        Ok(pubsub
            .into_on_message()
            .filter_map(|message| async move {
                let payload: String = message.get_payload().ok()?;
                serde_json::from_str(&payload).ok()
            })
            .boxed())
    }
}

/// Subscribes to `bus` for as long as the process lives, resubscribing after a lost
/// connection, and hands every event to `deliver`.
pub async fn relay(bus: Arc<dyn EventBus>, deliver: impl Fn(RunEvent) + Send + Sync + 'static) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match bus.subscribe().await {
            Ok(mut events) => {
                backoff = Duration::from_millis(100);
                while let Some(event) = events.next().await {
                    deliver(event);
                }
                tracing::warn!("event subscription ended; subscribing again");
            }
            Err(error) => tracing::warn!(%error, "event subscription failed; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
