//! How the serving threads of `http::serve_on_threads` share connections. The kernel spreads
//! new connections over the threads' sockets by a hash of their addresses, which leaves one
//! thread with many more connections than another (23 and 41 of 64, say; nginx's workers split
//! theirs just as unevenly). With long-lived connections, those of the busier thread then wait
//! longer for every answer while the other thread may sit idle. So a thread that accepts a
//! connection while it serves more than another hands it to the one serving fewest, once, when
//! it is accepted; requests never cross threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// A connection handed to another thread, with its slot among the open connections.
pub type Moved = (std::net::TcpStream, OwnedSemaphorePermit);

/// A connection to serve on this thread: its slot, and what counts it as this thread's.
pub type Placed = (TcpStream, OwnedSemaphorePermit, Option<Open>);

/// One thread's part: the counts of connections every thread serves, a way to each of them,
/// and where connections handed to this one arrive.
pub struct Share {
    me: usize,
    open: Arc<[AtomicUsize]>,
    peers: Arc<[UnboundedSender<Moved>]>,
    inbox: UnboundedReceiver<Moved>,
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
    pub fn split(threads: usize) -> Vec<Self> {
        let open: Arc<[AtomicUsize]> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
        let (peers, inboxes): (Vec<_>, Vec<_>) = (0..threads).map(|_| unbounded_channel()).unzip();
        let peers: Arc<[UnboundedSender<Moved>]> = peers.into();
        inboxes
            .into_iter()
            .enumerate()
            .map(|(me, inbox)| Self {
                me,
                open: open.clone(),
                peers: peers.clone(),
                inbox,
            })
            .collect()
    }

    /// Serves `stream`, just accepted, here or hands it to the thread serving fewest
    /// connections, if that is fewer than this one serves. Returns the stream if it stays, with
    /// the guard that counts it.
    pub fn place(&self, stream: TcpStream, permit: OwnedSemaphorePermit) -> Option<Placed> {
        let mine = self.open[self.me].load(Ordering::Relaxed);
        let fewest = (0..self.open.len())
            .map(|i| (i, self.open[i].load(Ordering::Relaxed)))
            .min_by_key(|&(_, n)| n);
        let (stream, permit) = match fewest {
            Some((to, n)) if n < mine => match self.hand(to, stream, permit) {
                Ok(()) => return None,
                Err(back) => back?,
            },
            _ => (stream, permit),
        };
        Some((stream, permit, Some(self.count(self.me))))
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
            Ok(stream) => Some((stream, permit, Some(open))),
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
