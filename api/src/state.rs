//! The state every handler shares.

use std::sync::Arc;

use arian_core::Catalog;
use arian_core::config::SecurityConfig;
use arian_core::engine::PriceTable;
use arian_core::queue::JobQueue;
use arian_core::store::Store;

use crate::auth::tokens::TokenKeys;
use crate::limits::Limits;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    pub catalog: Arc<Catalog>,
    pub prices: Arc<PriceTable>,
    /// The model runs are priced with.
    pub model: String,
    pub max_attempts: u32,
    pub tokens: Arc<TokenKeys>,
    pub cookie_secure: bool,
    /// Origins allowed to call the API from a browser (CORS and cookie writes).
    pub cors_origins: Arc<Vec<String>>,
    pub security: Arc<SecurityConfig>,
    pub limits: Arc<Limits>,
    /// Open WebSockets and the relay of run events to them.
    pub hub: Arc<crate::ws::Hub>,
    /// Where the API publishes the run events it causes itself (a stop).
    pub events: Arc<dyn arian_core::events::EventBus>,
    /// True when the queue is the in-process one of the embedded default.
    pub embedded: bool,
}
