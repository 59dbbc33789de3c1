//! The WebSocket hub of one API process: relays run events from the bus to the connections
//! of the batch's owner only, and counts each user's connections against the cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arian_core::events::{EventBus, RunEvent, relay};
use arian_core::store::Store;
use tokio::sync::{broadcast, mpsc};

// FIXME(ws-replay): a socket gets events from the moment it opens; one that reconnects re-reads
// the batch status instead of replaying what it missed.

/// Events buffered per user before a slow connection starts missing some.
const USER_BUFFER: usize = 256;
/// Batch owners remembered; the map starts afresh past this.
const MAX_CACHED_OWNERS: usize = 100_000;

#[derive(Default)]
pub struct Hub {
    users: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    owners: Mutex<HashMap<String, String>>,
}

impl Hub {
    /// A receiver for the user's events, or `None` when the user already has `cap` open.
    pub fn join(&self, user_id: &str, cap: usize) -> Option<broadcast::Receiver<Arc<str>>> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.retain(|_, sender| sender.receiver_count() > 0);
        let sender = users
            .entry(user_id.to_string())
            .or_insert_with(|| broadcast::channel(USER_BUFFER).0);
        (sender.receiver_count() < cap).then(|| sender.subscribe())
    }

    /// Connections the user has open now.
    pub fn connections(&self, user_id: &str) -> usize {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .get(user_id)
            .map_or(0, broadcast::Sender::receiver_count)
    }

    fn deliver(&self, user_id: &str, text: Arc<str>) {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = users.get(user_id) {
            let _ = sender.send(text);
        }
    }

    /// The batch's owner, from the cache or the store (the store is the authority).
    async fn owner(&self, store: &Store, queue_id: &str) -> Option<String> {
        if let Some(owner) = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(queue_id)
        {
            return Some(owner.clone());
        }
        let batch = store.batch_unscoped(queue_id).await.ok()??;
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if owners.len() >= MAX_CACHED_OWNERS {
            owners.clear();
        }
        owners.insert(queue_id.to_string(), batch.user_id.clone());
        Some(batch.user_id)
    }

    /// Relays the bus into the hub for as long as the process lives.
    pub fn spawn_relay(self: &Arc<Self>, store: Store, bus: Arc<dyn EventBus>) {
        let (sender, mut receiver) = mpsc::channel::<RunEvent>(4096);
        tokio::spawn(relay(bus, move |event| {
            if sender.try_send(event).is_err() {
                tracing::warn!("event relay is full; an event was dropped");
            }
        }));
        let hub = self.clone();
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                let Some(owner) = hub.owner(&store, &event.queue_id).await else {
                    continue;
                };
                if hub.connections(&owner) == 0 {
                    continue;
                }
                if let Ok(text) = serde_json::to_string(&event) {
                    hub.deliver(&owner, text.into());
                }
            }
        });
    }
}
