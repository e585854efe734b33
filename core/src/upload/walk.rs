//! Walks a tree of folders on a few threads at once: each thread takes the next folder waiting,
//! lists it with the caller's function and queues the folders found in it, until none is left
//! and no thread is listing. Listing a site is mostly waiting on the file system for each
//! file's metadata, which threads do side by side.

use std::sync::{Condvar, Mutex};

use crate::sync::lock;

/// The folders waiting, and how many threads are listing one (and may queue more).
struct Queue<N> {
    waiting: Vec<N>,
    listing: usize,
    failed: bool,
}

struct Shared<N> {
    queue: Mutex<Queue<N>>,
    changed: Condvar,
}

/// Lists `top` and every folder below it with `list` (which answers what it found in a folder
/// and the folders in it), on up to `threads` threads: what each listing found, in no set
/// order, or the first error (the walk stops at once; listings under way finish).
pub fn walk<N, T, E>(
    top: N,
    threads: usize,
    list: impl Fn(N) -> Result<(T, Vec<N>), E> + Sync,
) -> Result<Vec<T>, E>
where
    N: Send,
    T: Send,
    E: Send,
{
    let shared = Shared {
        queue: Mutex::new(Queue {
            waiting: vec![top],
            listing: 0,
            failed: false,
        }),
        changed: Condvar::new(),
    };
    let work = || -> Result<Vec<T>, E> {
        let mut found = Vec::new();
        while let Some(folder) = shared.next() {
            let mut turn = Turn {
                shared: &shared,
                below: Vec::new(),
                ok: false,
            };
            let (here, below) = list(folder)?;
            found.push(here);
            turn.below = below;
            turn.ok = true;
        }
        Ok(found)
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.max(1)).map(|_| scope.spawn(work)).collect();
        let mut all = work()?;
        for helper in helpers {
            match helper.join() {
                Ok(found) => all.extend(found?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })
}

impl<N> Shared<N> {
    /// The next folder to list, once there is one; none when all are listed or one failed.
    fn next(&self) -> Option<N> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.failed {
                return None;
            }
            if let Some(folder) = queue.waiting.pop() {
                queue.listing += 1;
                return Some(folder);
            }
            if queue.listing == 0 {
                return None;
            }
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// One folder being listed: when it ends (listed, failed or panicked) the folders found in it
/// are queued, or the walk is stopped, and the other threads are woken.
struct Turn<'a, N> {
    shared: &'a Shared<N>,
    below: Vec<N>,
    ok: bool,
}

impl<N> Drop for Turn<'_, N> {
    fn drop(&mut self) {
        let mut queue = lock(&self.shared.queue);
        queue.listing -= 1;
        queue.failed |= !self.ok;
        queue.waiting.append(&mut self.below);
        drop(queue);
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of numbers: below `n` are `2n + 1` and `2n + 2`, up to `last`.
    fn below(n: u32, last: u32) -> Vec<u32> {
        [2 * n + 1, 2 * n + 2]
            .into_iter()
            .filter(|c| *c <= last)
            .collect()
    }

    #[test]
    fn every_folder_is_listed_once_on_any_number_of_threads() {
        for threads in [0, 1, 2, 4, 9] {
            let mut found = walk(0, threads, |n| Ok::<_, ()>((n, below(n, 999)))).expect("walks");
            found.sort_unstable();
            assert_eq!(found, (0..=999).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn the_first_failure_ends_the_walk() {
        for threads in [1, 3] {
            let got = walk(0, threads, |n| {
                if n == 40 {
                    Err(format!("cannot list {n}"))
                } else {
                    Ok((n, below(n, 999)))
                }
            });
            assert_eq!(got, Err("cannot list 40".to_owned()), "{threads} threads");
        }
    }
}
