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

    pub fn subscribe(&self, id: &DeploymentId) -> broadcast::Receiver<Arc<LogFrame>> {
        self.channels()
            .entry(id.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_FRAMES).0)
            .subscribe()
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
