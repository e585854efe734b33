//! Live fan-out of log frames to followers, one broadcast channel per unfinished deployment.
//! Frames are published after they are stored, in `seq` order, each of at most about
//! `FRAME_BYTES` of text however large the builder's batch; a follower that falls behind (the
//! channel reports `Lagged`) reads what it missed from the database instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use scalemesh_core::DeploymentId;
use scalemesh_core::wire::{LogFrame, LogLine};
use tokio::sync::broadcast;

const CHANNEL_FRAMES: usize = 256;

/// Bytes of text per frame, live or caught up from storage: what a follower that stopped
/// reading holds in the server's memory (a frame is cut after the line that reaches it).
pub const FRAME_BYTES: usize = 64 * 1024;

/// `lines` cut into frames: each ends with the line that brings its text to `max_bytes` or
/// more, so a frame holds at least one line and at most `max_bytes` plus one line.
pub fn frames(lines: Vec<LogLine>, max_bytes: usize) -> Vec<Vec<LogLine>> {
    let mut frames = Vec::new();
    let mut frame = Vec::new();
    let mut bytes = 0;
    for line in lines {
        bytes += line.text.len();
        frame.push(line);
        if bytes >= max_bytes {
            frames.push(std::mem::take(&mut frame));
            bytes = 0;
        }
    }
    if !frame.is_empty() {
        frames.push(frame);
    }
    frames
}

#[derive(Default)]
pub struct LogHub {
    channels: Mutex<HashMap<DeploymentId, broadcast::Sender<Arc<LogFrame>>>>,
}

impl LogHub {
    fn channels(&self) -> MutexGuard<'_, HashMap<DeploymentId, broadcast::Sender<Arc<LogFrame>>>> {
        scalemesh_core::sync::lock(&self.channels)
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

    /// Sends `lines` to everyone following `id` now, in frames of about `FRAME_BYTES`.
    pub fn publish_lines(&self, id: &DeploymentId, lines: Vec<LogLine>) {
        for lines in frames(lines, FRAME_BYTES) {
            self.publish(id, LogFrame::Lines { lines });
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

    #[test]
    fn lines_are_cut_into_frames_of_about_the_bytes_given() {
        let line = |seq: u64, len: usize| LogLine {
            seq,
            ts: time::OffsetDateTime::UNIX_EPOCH,
            stream: scalemesh_core::wire::LogStream::Stdout,
            text: "x".repeat(len),
        };
        // (the lengths of the lines' text, the frames they make at 10 bytes: seqs in each)
        let table: &[(&[usize], &[&[u64]])] = &[
            (&[], &[]),
            (&[3], &[&[0]]),
            (&[3, 3, 3], &[&[0, 1, 2]]),
            (&[3, 3, 3, 1], &[&[0, 1, 2, 3]]),
            (&[3, 3, 3, 1, 1], &[&[0, 1, 2, 3], &[4]]),
            (&[10, 10, 0], &[&[0], &[1], &[2]]),
            // A line longer than a frame is a frame of its own, never split.
            (&[2, 50, 2], &[&[0, 1], &[2]]),
            (&[0; 5], &[&[0, 1, 2, 3, 4]]),
        ];
        for (lengths, want) in table {
            let lines = lengths
                .iter()
                .enumerate()
                .map(|(i, len)| line(i as u64, *len))
                .collect();
            let got: Vec<Vec<u64>> = frames(lines, 10)
                .iter()
                .map(|f| f.iter().map(|l| l.seq).collect())
                .collect();
            let want: Vec<Vec<u64>> = want.iter().map(|f| f.to_vec()).collect();
            assert_eq!(got, want, "{lengths:?}");
        }
    }
}
