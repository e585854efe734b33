//! Live fan-out of log frames to followers, one broadcast channel per unfinished deployment.
//! Frames are published after they are stored, in `seq` order; a follower that falls behind
//! (the channel reports `Lagged`) reads what it missed from the database instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use scalemesh_core::DeploymentId;
use scalemesh_core::wire::LogFrame;
use tokio::sync::broadcast;

const CHANNEL_FRAMES: usize = 256;

#[derive(Default)]
pub struct LogHub {
    channels: Mutex<HashMap<DeploymentId, broadcast::Sender<Arc<LogFrame>>>>,
}

impl LogHub {
    fn channels(&self) -> MutexGuard<'_, HashMap<DeploymentId, broadcast::Sender<Arc<LogFrame>>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `id`. The channel is dropped with its last subscription.
    pub fn subscribe<'h>(&'h self, id: &DeploymentId) -> Subscription<'h> {
        let rx = self
            .channels()
            .entry(id.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_FRAMES).0)
            .subscribe();
        Subscription {
            hub: self,
            id: id.clone(),
            rx,
        }
    }

    /// Sends `frame` to everyone following `id` now; nobody following is fine.
    pub fn publish(&self, id: &DeploymentId, frame: LogFrame) {
        let mut channels = self.channels();
        if let Some(tx) = channels.get(id)
            && tx.send(Arc::new(frame)).is_err()
        {
            // No receiver is left: forget the channel until someone follows again.
            channels.remove(id);
        }
    }

    /// Drops `id`'s channel after its final frame; followers see it closed.
    pub fn close(&self, id: &DeploymentId) {
        self.channels().remove(id);
    }
}

pub struct Subscription<'h> {
    hub: &'h LogHub,
    id: DeploymentId,
    rx: broadcast::Receiver<Arc<LogFrame>>,
}

impl Subscription<'_> {
    pub async fn recv(&mut self) -> Result<Arc<LogFrame>, broadcast::error::RecvError> {
        self.rx.recv().await
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut channels = self.hub.channels();
        // This subscription's receiver still counts until the fields drop.
        if channels
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            channels.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_go_with_their_last_follower() {
        let hub = LogHub::default();
        let id = DeploymentId::generate();
        let a = hub.subscribe(&id);
        let b = hub.subscribe(&id);
        drop(a);
        assert_eq!(hub.channels().len(), 1);
        drop(b);
        assert!(hub.channels().is_empty(), "no channel is left behind");
    }
}
