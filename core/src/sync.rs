//! Locks over plain data, taken whether or not a thread panicked while holding them: what they
//! guard is never left half-done by a panic (each holder writes whole values), so a poisoned
//! lock is as good as any other. One place says so, instead of every lock's caller.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `mutex`, locked.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `rw`, locked for reading.
pub fn read<T: ?Sized>(rw: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rw.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `rw`, locked for writing.
pub fn write<T: ?Sized>(rw: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rw.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, RwLock};

    #[test]
    fn a_lock_poisoned_by_a_panic_is_still_taken() {
        let mutex = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m, r) = (mutex.clone(), rw.clone());
        let panicked = std::thread::spawn(move || {
            let _held = m.lock();
            let _written = r.write();
            panic!("a holder panics");
        })
        .join();
        assert!(panicked.is_err());
        assert!(mutex.is_poisoned() && rw.is_poisoned());
        assert_eq!(*super::lock(&mutex), 1);
        assert_eq!(*super::read(&rw), 2);
        *super::write(&rw) = 3;
        assert_eq!(*super::read(&rw), 3);
    }
}
