//! How the serving threads of `serve_on_threads` share connections ([`Spread`]).
//!
//! By default the kernel spreads new connections over the threads' sockets by a hash of their
//! addresses, which leaves one thread with many more connections than another (23 and 41 of 64,
//! say; nginx's workers split theirs just as unevenly). With long-lived connections, those of
//! the busier thread then wait longer for every answer while the other thread may sit idle. So
//! a thread that accepts a connection while it serves more than another hands it to the one
//! serving fewest, once, when it is accepted; requests never cross threads.
//!
//! With [`Spread::Cpu`], each thread runs on a core of its own and the kernel gives it the
//! connections whose packets that core receives, so a connection's packets and its requests are
//! handled on one core. Threads then serve as many connections as their cores receive, and hand
//! new ones over only when one has served far more than another for a while (`LOPSIDED`): the
//! sign of a network card that delivers everything to one core.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How new connections are spread over the serving threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Spread {
    /// Evenly: the kernel picks a thread by hash, and a thread serving more connections than
    /// another hands new ones to the one serving fewest.
    #[default]
    Even,
    /// By core: thread `i` runs only on the `i`-th core this process may use, and is given the
    /// connections whose packets arrive on that core (`SO_INCOMING_CPU`), as Envoy's and Traffic
    /// Server's CPU-locality options do. For network cards that spread flows over cores (RSS or
    /// RPS).
    Cpu,
}

/// Under [`Spread::Cpu`], a thread is lopsided while it serves more than twice another's
/// connections plus this many; lopsided for `LOPSIDED_FOR`, it hands new connections over.
const LOPSIDED: usize = 8;
pub(crate) const LOPSIDED_FOR: Duration = Duration::from_secs(1);

/// A connection handed to another thread, with its slot among the open connections.
pub type Moved = (std::net::TcpStream, OwnedSemaphorePermit);

/// A connection to serve on this thread: its slot, and what counts it as this thread's (none
/// when the listener serves from one thread).
pub struct Placed {
    pub stream: TcpStream,
    pub slot: OwnedSemaphorePermit,
    pub counted: Option<Open>,
}

/// One thread's part: the counts of connections every thread serves, a way to each of them,
/// and where connections handed to this one arrive.
pub struct Share {
    me: usize,
    spread: Spread,
    open: Arc<[AtomicUsize]>,
    peers: Arc<[UnboundedSender<Moved>]>,
    inbox: UnboundedReceiver<Moved>,
    /// Since when this thread has been lopsided (`Spread::Cpu`).
    lopsided_since: Cell<Option<Instant>>,
}

/// The next connection handed to this thread; none ever when it is not one of several.
pub async fn arrival(share: &mut Option<Share>) -> Placed {
    if let Some(share) = share {
        while let Some(moved) = share.inbox.recv().await {
            if let Some(placed) = share.arrived(moved) {
                return placed;
            }
        }
    }
    std::future::pending().await
}

impl Share {
    /// The parts of `threads` threads, in order.
    pub fn split(threads: usize, spread: Spread) -> Vec<Self> {
        let open: Arc<[AtomicUsize]> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        let (peers, inboxes): (Vec<_>, Vec<_>) = (0..threads).map(|_| unbounded_channel()).unzip();
        let peers: Arc<[UnboundedSender<Moved>]> = peers.into();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| Self {
                me,
                spread,
                open: open.clone(),
                peers: peers.clone(),
                inbox,
                lopsided_since: Cell::new(None),
            })
            .collect()
    }

    /// Serves `stream`, just accepted, here or hands it to the thread serving fewest
    /// connections, if this one serves more (`Spread::Even`) or has long served far more
    /// (`Spread::Cpu`). Returns the stream if it stays, with the guard that counts it.
    pub fn place(&self, stream: TcpStream, permit: OwnedSemaphorePermit) -> Option<Placed> {
        let mine = self.open[self.me].load(Ordering::Relaxed);
        let fewest = (0..self.open.len())
            .map(|i| (i, self.open[i].load(Ordering::Relaxed)))
            .min_by_key(|&(_, n)| n);
        let (stream, permit) = match fewest {
            Some((to, n)) if self.hands_over(mine, n, Instant::now()) => {
                match self.hand(to, stream, permit) {
                    Ok(()) => return None,
                    Err(back) => back?,
                }
            }
            _ => (stream, permit),
        };
        Some(Placed {
            stream,
            slot: permit,
            counted: Some(self.count(self.me)),
        })
    }

    /// Whether a connection accepted here at `now`, while this thread serves `mine` and another
    /// `fewest`, goes to that other.
    fn hands_over(&self, mine: usize, fewest: usize, now: Instant) -> bool {
        match self.spread {
            Spread::Even => fewest < mine,
            Spread::Cpu => {
                // A burst of connections from one core (a client starting its threads there)
                // lopsides the threads for a moment; only a lasting lean moves connections.
                // Connections already open stay where they are.
                if mine <= fewest.saturating_mul(2).saturating_add(LOPSIDED) {
                    self.lopsided_since.set(None);
                    return false;
                }
                let since = self.lopsided_since.get().unwrap_or(now);
                self.lopsided_since.set(Some(since));
                now.duration_since(since) >= LOPSIDED_FOR
            }
        }
    }

    /// Takes no more connections from other threads (they serve theirs themselves from now on)
    /// and returns those already handed over.
    pub fn close(&mut self) -> Vec<Placed> {
        self.inbox.close();
        let mut placed = Vec::new();
        while let Ok(moved) = self.inbox.try_recv() {
            placed.extend(self.arrived(moved));
        }
        placed
    }

    /// A connection another thread handed to this one, counted here already.
    fn arrived(&self, (stream, permit): Moved) -> Option<Placed> {
        let open = Open {
            open: self.open.clone(),
            thread: self.me,
        };
        match TcpStream::from_std(stream) {
            Ok(stream) => Some(Placed {
                stream,
                slot: permit,
                counted: Some(open),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "taking over a connection failed");
                None
            }
        }
    }

    /// Sends `stream` to thread `to`; back, registered here again, if that thread has stopped
    /// (`None` when even that fails, and the connection is dropped).
    #[allow(clippy::type_complexity)]
    fn hand(
        &self,
        to: usize,
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), Option<(TcpStream, OwnedSemaphorePermit)>> {
        let stream = stream.into_std().map_err(|e| {
            tracing::warn!(error = %e, "handing over a connection failed");
            None
        })?;
        self.open[to].fetch_add(1, Ordering::Relaxed);
        match self.peers[to].send((stream, permit)) {
            Ok(()) => Ok(()),
            Err(returned) => {
                self.open[to].fetch_sub(1, Ordering::Relaxed);
                let (stream, permit) = returned.0;
                Err(TcpStream::from_std(stream).ok().map(|s| (s, permit)))
            }
        }
    }

    fn count(&self, thread: usize) -> Open {
        self.open[thread].fetch_add(1, Ordering::Relaxed);
        Open {
            open: self.open.clone(),
            thread,
        }
    }
}

/// Counts a connection as open on its thread until dropped.
pub struct Open {
    open: Arc<[AtomicUsize]>,
    thread: usize,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open[self.thread].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_evenly_a_thread_serving_more_hands_over_at_once() {
        let share = Share::split(2, Spread::Even).remove(0);
        let now = Instant::now();
        assert!(!share.hands_over(3, 3, now));
        assert!(share.hands_over(4, 3, now));
    }

    #[test]
    fn spread_by_core_only_a_lasting_lean_hands_over() {
        let share = Share::split(2, Spread::Cpu).remove(0);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        // Within twice the other's plus `LOPSIDED`, a thread keeps what its core receives.
        assert!(!share.hands_over(2 * 5 + LOPSIDED, 5, at(0)));
        // Beyond it, only once it has lasted `LOPSIDED_FOR`.
        assert!(!share.hands_over(40, 0, at(0)));
        assert!(!share.hands_over(41, 0, at(999)));
        assert!(share.hands_over(41, 0, at(1000)));
        assert!(share.hands_over(41, 5, at(1500)));
        // Even again, the lean starts over.
        assert!(!share.hands_over(41, 17, at(1600)));
        assert!(!share.hands_over(42, 0, at(1700)));
        assert!(!share.hands_over(42, 0, at(2699)));
        assert!(share.hands_over(42, 0, at(2700)));
    }
}
