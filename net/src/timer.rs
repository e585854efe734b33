//! The timer behind the deadline for a request's head on the serving threads of `serve_on_threads`.
//! hyper starts that deadline whenever a connection waits for a request and drops it when the head
//! arrives, almost always long before it is due; tokio's timer would put it into its wheel and take
//! it out again for every request. Here a deadline is a slot in its thread's list, and once a
//! second each serving thread (`sweep`) wakes the connections whose deadline has passed: a deadline
//! fires up to a second late, which a limit of seconds does not notice.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often `sweep` looks for deadlines that have passed.
pub const TICK: Duration = Duration::from_secs(1);

/// A `hyper::rt::Timer` whose sleeps fire only on a thread that runs `sweep`.
#[derive(Clone, Copy, Debug)]
pub struct Coarse;

impl hyper::rt::Timer for Coarse {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep {
            deadline,
            key: None,
        })
    }
}

/// Wakes, every `TICK`, the sleeps of this thread whose deadline has passed. Runs until dropped.
pub async fn sweep() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = PENDING.with_borrow_mut(|pending| pending.take_due(Instant::now()));
        // Woken outside the borrow: waking can drop a finished task, and with it a sleep.
        for waker in due {
            waker.wake();
        }
    }
}

struct Sleep {
    deadline: Instant,
    /// Its slot, once polled.
    key: Option<Key>,
}

#[derive(Clone, Copy)]
struct Key {
    thread: u64,
    index: usize,
    generation: u64,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        PENDING.with_borrow_mut(|pending| {
            if let Some(key) = this.key
                && key.thread == pending.thread
            {
                let Some(slot) = pending.slot(key) else {
                    // Its slot was freed when it fired.
                    return Poll::Ready(());
                };
                if !slot.waker.will_wake(cx.waker()) {
                    slot.waker.clone_from(cx.waker());
                }
                return Poll::Pending;
            }
            // First polled here (or moved from another thread, whose sweep frees its old slot
            // when that is due).
            this.key = Some(pending.insert(this.deadline, cx.waker().clone()));
            Poll::Pending
        })
    }
}

impl hyper::rt::Sleep for Sleep {}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        // A thread being torn down, or a drop during this thread's own borrow, leaves the slot
        // for its sweep to free when it is due.
        let _ = PENDING.try_with(|pending| {
            if let Ok(mut pending) = pending.try_borrow_mut() {
                pending.remove(key);
            }
        });
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::new());
}

/// A thread's sleeps: slots reused through a free list, each with a generation so that a key
/// to a freed slot is never taken for its next occupant.
struct Pending {
    thread: u64,
    slots: Vec<Slot>,
    free: Vec<usize>,
}

struct Slot {
    generation: u64,
    deadline: Instant,
    waker: Waker,
    used: bool,
}

impl Pending {
    fn new() -> Self {
        static THREADS: AtomicU64 = AtomicU64::new(0);
        Self {
            thread: THREADS.fetch_add(1, Ordering::Relaxed),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, deadline: Instant, waker: Waker) -> Key {
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index];
                slot.deadline = deadline;
                slot.waker = waker;
                slot.used = true;
                index
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    deadline,
                    waker,
                    used: true,
                });
                self.slots.len() - 1
            }
        };
        Key {
            thread: self.thread,
            index,
            generation: self.slots[index].generation,
        }
    }

    fn slot(&mut self, key: Key) -> Option<&mut Slot> {
        if key.thread != self.thread {
            return None;
        }
        self.slots
            .get_mut(key.index)
            .filter(|slot| slot.used && slot.generation == key.generation)
    }

    fn remove(&mut self, key: Key) -> Option<Waker> {
        let slot = self.slot(key)?;
        slot.used = false;
        slot.generation += 1;
        let waker = std::mem::replace(&mut slot.waker, Waker::noop().clone());
        self.free.push(key.index);
        Some(waker)
    }

    /// Frees the slots due by `now` and hands back their wakers.
    fn take_due(&mut self, now: Instant) -> Vec<Waker> {
        let due: Vec<Key> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.used && slot.deadline <= now)
            .map(|(index, slot)| Key {
                thread: self.thread,
                index,
                generation: slot.generation,
            })
            .collect();
        due.into_iter().filter_map(|key| self.remove(key)).collect()
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use hyper::rt::Timer;

    use super::*;

    fn held() -> usize {
        PENDING.with_borrow(Pending::held)
    }

    #[test]
    fn a_sweep_wakes_the_sleeps_due_by_its_time_and_no_others() {
        // (milliseconds after the start a sweep runs, the deadlines it wakes), for deadlines at
        // 0, 300, 300, 1000 and 5000 ms.
        const TABLE: &[(u64, &[u64])] = &[
            (0, &[0]),
            (299, &[]),
            (300, &[300, 300]),
            (300, &[]),
            (1_299, &[1_000]),
            (4_999, &[]),
            (60_000, &[5_000]),
        ];
        let start = Instant::now();
        let mut pending = Pending::new();
        let mut keys = Vec::new();
        for at in [0, 300, 300, 1_000, 5_000] {
            keys.push((
                at,
                pending.insert(start + Duration::from_millis(at), Waker::noop().clone()),
            ));
        }
        for &(now, woken) in TABLE {
            let before: Vec<u64> = keys
                .iter()
                .filter(|(_, key)| pending.slot(*key).is_some())
                .map(|(at, _)| *at)
                .collect();
            let due = pending.take_due(start + Duration::from_millis(now));
            let after: Vec<u64> = keys
                .iter()
                .filter(|(_, key)| pending.slot(*key).is_some())
                .map(|(at, _)| *at)
                .collect();
            let mut gone = before.clone();
            for at in &after {
                let i = gone.iter().position(|g| g == at).expect("still held");
                gone.remove(i);
            }
            assert_eq!(due.len(), woken.len(), "a sweep at {now} ms");
            assert_eq!(gone, woken, "a sweep at {now} ms");
        }
        assert_eq!(pending.held(), 0);
    }

    #[tokio::test]
    async fn a_sleep_is_woken_by_the_sweep_and_not_before_its_deadline() {
        let sweeper = tokio::spawn(sweep());
        let start = Instant::now();
        let after = Duration::from_millis(300);
        let sleep = Coarse.sleep_until(start + after);
        tokio::time::timeout(Duration::from_secs(30), sleep)
            .await
            .expect("fired");
        assert!(
            start.elapsed() >= after,
            "fired after {:?}",
            start.elapsed()
        );
        assert_eq!(held(), 0, "its slot is free again");
        sweeper.abort();
    }

    #[tokio::test]
    async fn a_sleep_dropped_before_its_deadline_frees_its_slot() {
        let before = held();
        let mut sleeps: Vec<_> = (0..100)
            .map(|_| Coarse.sleep(Duration::from_secs(3600)))
            .collect();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for sleep in &mut sleeps {
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(held(), before + 100);
        sleeps.truncate(10);
        assert_eq!(held(), before + 10);
        // Freed slots are reused, not grown into.
        let len = PENDING.with_borrow(|p| p.slots.len());
        let mut more: Vec<_> = (0..90)
            .map(|_| Coarse.sleep(Duration::from_secs(3600)))
            .collect();
        for sleep in &mut more {
            assert!(sleep.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(PENDING.with_borrow(|p| p.slots.len()), len);
        drop((sleeps, more));
        assert_eq!(held(), before);
    }

    #[test]
    fn a_key_to_a_freed_slot_does_not_reach_its_next_occupant() {
        let mut pending = Pending::new();
        let old = pending.insert(Instant::now(), Waker::noop().clone());
        assert!(pending.remove(old).is_some());
        let new = pending.insert(Instant::now(), Waker::noop().clone());
        assert_eq!(new.index, old.index);
        assert!(pending.slot(old).is_none());
        assert!(
            pending.remove(old).is_none(),
            "the new sleep keeps its slot"
        );
        assert!(pending.slot(new).is_some());
        let mut other = Pending::new();
        assert!(other.slot(new).is_none(), "another thread's key");
    }
}
