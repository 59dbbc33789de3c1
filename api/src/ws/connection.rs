//! One open WebSocket: the owner's events out, pings and a small command set in, with a
//! message rate limit, an idle timeout, and a close as soon as the session is revoked.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::state::AppState;

/// Close codes: 1000 normal, 1003 unsupported data, 1008 policy violation, 1009 too big.
const POLICY_VIOLATION: u16 = 1008;
const UNSUPPORTED: u16 = 1003;
const NORMAL: u16 = 1000;
const MESSAGE_TOO_BIG: u16 = 1009;
/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub struct Connection {
    pub state: AppState,
    pub user_id: String,
    pub session: String,
    pub events: broadcast::Receiver<Arc<str>>,
}

impl Connection {
    pub async fn serve(mut self, mut socket: WebSocket) {
        let security = self.state.security.clone();
        let mut ping = interval(security.ws_ping_interval);
        let mut session_check = interval(security.ws_session_check);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        session_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        let mut window = (Instant::now(), 0u32);
        let reason = loop {
            tokio::select! {
                event = self.events.recv() => match event {
                    Ok(text) => {
                        if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                            break "send failed";
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let notice = json!({"type": "events_missed", "data": {"missed": missed}});
                        if socket.send(Message::Text(notice.to_string().into())).await.is_err() {
                            break "send failed";
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break "relay closed",
                },
                incoming = socket.recv() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(_)) => {
                            // Mostly a message over the size limit; the client gets a reason
                            // if it still listens.
                            send_close(&mut socket, MESSAGE_TOO_BIG, "message too big or malformed").await;
                            break "read error";
                        }
                        None => break "client gone",
                    };
                    last_seen = Instant::now();
                    if window.0.elapsed() >= Duration::from_secs(60) {
                        window = (Instant::now(), 0);
                    }
                    window.1 += 1;
                    if window.1 > security.ws_max_messages_per_minute {
                        send_close(&mut socket, POLICY_VIOLATION, "message rate limit").await;
                        tracing::warn!(user_id = %self.user_id, "websocket message rate limit hit");
                        break "rate limited";
                    }
                    match message {
                        Message::Text(text) => {
                            if socket.send(Message::Text(answer(&text).into())).await.is_err() {
                                break "send failed";
                            }
                        }
                        Message::Binary(_) => {
                            send_close(&mut socket, UNSUPPORTED, "text messages only").await;
                            break "binary message";
                        }
                        Message::Close(_) => break "client closed",
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > security.ws_idle_timeout {
                        send_close(&mut socket, NORMAL, "idle timeout").await;
                        break "idle";
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break "send failed";
                    }
                }
                _ = session_check.tick() => {
                    if !self.session_live().await {
                        send_close(&mut socket, POLICY_VIOLATION, "session revoked").await;
                        tracing::info!(user_id = %self.user_id, "websocket closed: session revoked");
                        break "session revoked";
                    }
                }
            }
        };
        // The socket no longer counts against the user's cap while the close completes.
        drop(self.events);
        drain_until_closed(&mut socket).await;
        tracing::info!(user_id = %self.user_id, reason, "websocket closed");
    }

    /// A store error counts as live: a database blip should not drop every socket.
    async fn session_live(&self) -> bool {
        self.state
            .store
            .session_user(&self.user_id, &self.session)
            .await
            .map_or(true, |user| user.is_some())
    }
}

/// The answer to a client message: `ping` gets `pong`; subscriptions are implicit (a socket
/// gets every event of its owner's batches), so they are acknowledged; anything else is an
/// error message.
fn answer(text: &str) -> String {
    let kind = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string));
    match kind.as_deref() {
        Some("ping") => json!({"type": "pong"}),
        Some("subscribe_negotiation") => json!({"type": "subscribed"}),
        _ => json!({"type": "error", "data": {"message": "unknown message type"}}),
    }
    .to_string()
}

/// Sends a close frame; the connection then ends through `drain_until_closed`.
async fn send_close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Reads until the client answers the close (briefly): dropping a socket with unread client
/// data makes the kernel reset the connection, and the client would never see the close code.
async fn drain_until_closed(socket: &mut WebSocket) {
    let drain = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}
