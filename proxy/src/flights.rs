//! One fetch per key at a time, however many requests race for it: the first caller fetches,
//! the others wait and then find what the first one kept (the body cache, the site table).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scalemesh_core::sync::lock;

#[derive(Default)]
pub struct Flights {
    inflight: Mutex<HashMap<String, Gate>>,
}

/// A key's gate, and how many callers have joined it and not yet left.
type Gate = (Arc<tokio::sync::Mutex<()>>, usize);

pub struct Flight<'f> {
    // Released first, then counted out.
    _held: tokio::sync::OwnedMutexGuard<()>,
    _joined: Joined<'f>,
}

/// One caller counted in; counted out when dropped, even when its wait is abandoned (a request
/// dropped mid-flight). The last one out removes the key's entry.
struct Joined<'f> {
    flights: &'f Flights,
    key: String,
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        let mut inflight = lock(&self.flights.inflight);
        if let Some((_, users)) = inflight.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                inflight.remove(&self.key);
            }
        }
    }
}

impl Flights {
    pub async fn join(&self, key: &str) -> Flight<'_> {
        let gate = {
            let mut inflight = lock(&self.inflight);
            let (gate, users) = inflight
                .entry(key.to_owned())
                .or_insert_with(|| (Arc::new(tokio::sync::Mutex::new(())), 0));
            *users += 1;
            gate.clone()
        };
        let joined = Joined {
            flights: self,
            key: key.to_owned(),
        };
        Flight {
            _held: gate.lock_owned().await,
            _joined: joined,
        }
    }

    /// Whether no key is being fetched: every flight has landed.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        lock(&self.inflight).is_empty()
    }
}
