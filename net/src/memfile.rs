//! Large cached bodies sent with `sendfile(2)` rather than copied from the heap into the socket
//! on every response, as nginx sends files: copying a megabyte into the kernel is most of what
//! serving it costs.
//!
//! A body kept in memory that is large enough also gets a sealed memory file with the same
//! bytes (`memfd_create`, then sealed against any write, so what it holds never changes),
//! registered for the address range of the body's memory. Connections are written through
//! [`Conn`]: a write of a slice that lies inside a registered range becomes a `sendfile` from
//! that file at the slice's offset (HTTP/1 bodies; HTTP/2 DATA frames too when the client
//! takes frames that large), and any other write is a plain one. The body itself stays in
//! memory, for the writes that copy and for when `sendfile` cannot be used.
//!
//! A registration lives exactly as long as the memory it describes: it is removed before that
//! memory is freed, so a range found in the registry is always the body's own memory, whose
//! bytes equal the file's.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Write};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use scalemesh_core::sync;

use crate::counter::Counter;

/// Smaller bodies are copied: below this, the extra system call costs more than the copy, and
/// the serving threads keep their own copies of them anyway.
pub const MIN: usize = 64 * 1024 + 1;

/// Memory files open at most, so they cannot take the process's file descriptors, and the
/// bytes they hold at most (bodies still being sent keep theirs after they leave the cache).
const MOST: usize = 512;
const MOST_BYTES: usize = 256 * 1024 * 1024;

struct File {
    len: usize,
    fd: Arc<OwnedFd>,
    /// Registrations of this memory not yet ended: the same body may be registered again.
    users: usize,
}

/// Registered memory: first address → its file.
static FILES: LazyLock<RwLock<BTreeMap<usize, File>>> = LazyLock::new(Default::default);
static OPEN: AtomicUsize = AtomicUsize::new(0);
static OPEN_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Set once `sendfile` fails other than for the connection's sake (a sandbox that forbids it,
/// say): from then on every body is copied.
static BROKEN: AtomicBool = AtomicBool::new(false);
static SENT: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Memory files open now.
pub fn open() -> u64 {
    OPEN.load(Ordering::Relaxed).min(MOST) as u64
}

/// Whether `sendfile` is used at all: it is not once it has failed for other reasons than a
/// connection's.
pub fn working() -> bool {
    !BROKEN.load(Ordering::Relaxed)
}

/// Bytes sent from memory files since the process started.
pub fn sent() -> u64 {
    SENT.get()
}

fn files() -> std::sync::RwLockReadGuard<'static, BTreeMap<usize, File>> {
    sync::read(&FILES)
}

fn files_mut() -> std::sync::RwLockWriteGuard<'static, BTreeMap<usize, File>> {
    sync::write(&FILES)
}

/// A body kept in memory, as a response carries it: written through [`Conn`], it goes out
/// with `sendfile` when [`register`] gave it a memory file, and is copied otherwise. Where a
/// response is built from one, this type says which way its bytes may leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sendable(Bytes);

impl Sendable {
    /// A body with no memory file: always copied.
    pub fn plain(body: Bytes) -> Self {
        Self(body)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Part of the body; a part of a registered body is sent from its file too.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self(self.0.slice(range))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The bytes to put in a response.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// `body`, sent from a memory file of its own from now on when it is large enough and one can
/// be made; and the bytes that file holds, to be counted with the body. Writes the whole body
/// once: call it off the serving threads.
pub fn register(body: Bytes) -> (Sendable, usize) {
    let (body, file_bytes) = make_file(body);
    (Sendable(body), file_bytes)
}

fn make_file(body: Bytes) -> (Bytes, usize) {
    let len = body.len();
    if len < MIN || BROKEN.load(Ordering::Relaxed) {
        return (body, 0);
    }
    let start = body.as_ptr() as usize;
    let body = match join(&mut files_mut(), body) {
        Ok(body) => return (body, 0),
        Err(body) => body,
    };
    if !reserve(len) {
        return (body, 0);
    }
    let fd = match memory_file(&body) {
        Ok(fd) => fd,
        Err(e) => {
            release(len);
            tracing::debug!(error = %e, "no memory file; the body is copied when sent");
            return (body, 0);
        }
    };
    let mut files = files_mut();
    // Registered meanwhile by another thread: this file is not needed.
    let body = match join(&mut files, body) {
        Ok(body) => {
            drop(files);
            release(len);
            return (body, 0);
        }
        Err(body) => body,
    };
    files.insert(
        start,
        File {
            len,
            fd: Arc::new(fd),
            users: 1,
        },
    );
    drop(files);
    (Bytes::from_owner(Registered { body, start }), len)
}

/// When memory at the body's address is registered already: the body sharing that file, or a
/// shorter body that only begins there, left unregistered. Otherwise the body back, as `Err`.
fn join(files: &mut BTreeMap<usize, File>, body: Bytes) -> Result<Bytes, Bytes> {
    let start = body.as_ptr() as usize;
    let Some(file) = files.get_mut(&start) else {
        return Err(body);
    };
    if file.len != body.len() {
        return Ok(body);
    }
    file.users += 1;
    Ok(Bytes::from_owner(Registered { body, start }))
}

/// Counts a memory file of `len` bytes in, if it fits under both caps.
fn reserve(len: usize) -> bool {
    let files = OPEN.fetch_add(1, Ordering::Relaxed);
    let bytes = OPEN_BYTES.fetch_add(len, Ordering::Relaxed);
    if files >= MOST || bytes.saturating_add(len) > MOST_BYTES {
        release(len);
        return false;
    }
    true
}

fn release(len: usize) {
    OPEN.fetch_sub(1, Ordering::Relaxed);
    OPEN_BYTES.fetch_sub(len, Ordering::Relaxed);
}

/// A sealed memory file holding `body`.
fn memory_file(body: &[u8]) -> io::Result<OwnedFd> {
    let fd = memfd_create(
        c"scalemesh-body",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(body)?;
    let fd = OwnedFd::from(file);
    fcntl(
        &fd,
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    Ok(fd)
}

/// The memory of a registered body: unregistered before it is freed.
struct Registered {
    body: Bytes,
    start: usize,
}

impl AsRef<[u8]> for Registered {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut files = files_mut();
        let last = files.get_mut(&self.start).is_some_and(|file| {
            file.users -= 1;
            file.users == 0
        });
        let gone = if last {
            files.remove(&self.start)
        } else {
            None
        };
        drop(files);
        if let Some(gone) = gone {
            release(gone.len);
            // Closed once the lock is released: closing frees the file's pages.
            drop(gone);
        }
    }
}

/// The file holding `slice` and the slice's offset in it, when `slice` is registered memory.
fn find(slice: &[u8]) -> Option<(Arc<OwnedFd>, nix::libc::off_t)> {
    let start = slice.as_ptr() as usize;
    let files = files();
    let (&at, file) = files.range(..=start).next_back()?;
    let end = start.checked_add(slice.len())?;
    let offset = nix::libc::off_t::try_from(start - at).ok()?;
    (end <= at + file.len).then(|| (file.fd.clone(), offset))
}

/// Whether `e` says the peer is gone, rather than that `sendfile` cannot be used.
fn connection_gone(e: &io::Error) -> bool {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, NotConnected};
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected
    )
}

/// A connection whose writes of registered bodies are `sendfile`s.
pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self { stream }
    }

    /// `op` once the socket can take data, again whenever it turns out it could not.
    fn poll_io(
        &self,
        cx: &mut Context<'_>,
        op: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_io(Interest::WRITABLE, || op(&self.stream)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let registered = bufs
            .iter()
            .enumerate()
            .filter(|(_, buf)| buf.len() >= MIN)
            .find_map(|(at, buf)| find(buf).map(|(fd, offset)| (at, buf.len(), fd, offset)));
        let Some((at, len, fd, offset)) = registered else {
            return Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        };
        if bufs[..at].iter().any(|buf| !buf.is_empty()) {
            // What comes before the body (its response's head) goes first, held back until
            // the body joins it in the same packets.
            return self.poll_io(cx, |stream| {
                socket2::SockRef::from(stream).send_vectored_with_flags(
                    &bufs[..at],
                    nix::libc::MSG_MORE | nix::libc::MSG_NOSIGNAL,
                )
            });
        }
        let sent = self.poll_io(cx, |stream| {
            let mut offset = offset;
            Ok(nix::sys::sendfile::sendfile(
                stream,
                fd.as_ref(),
                Some(&mut offset),
                len,
            )?)
        });
        match sent {
            Poll::Ready(Ok(n)) => {
                SENT.add(n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) if !connection_gone(&e) => {
                // The body is in memory: copy it, and stop trying `sendfile`.
                if !BROKEN.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "sendfile failed; bodies are copied from now on");
                }
                Pin::new(&mut self.stream).poll_write_vectored(cx, &bufs[at..])
            }
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn pattern(len: usize) -> Bytes {
        (0..len)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn a_large_body_is_found_in_its_sealed_file_until_dropped() {
        let body = pattern(MIN + 1000);
        let (registered, file_bytes) = make_file(body.clone());
        assert_eq!(file_bytes, body.len());
        assert_eq!(registered, body);
        let part = registered.slice(5000..9000);
        let (fd, offset) = find(&part).expect("registered");
        assert_eq!(offset, 5000);
        let file = std::fs::File::from(fd.try_clone().expect("dup"));
        let mut held = vec![0; 4000];
        file.read_exact_at(&mut held, 5000).expect("read");
        assert_eq!(held, part);
        // Sealed: nothing can change what a response is sent from.
        assert!(
            file.write_at(b"x", 0).is_err(),
            "a sealed file took a write"
        );
        assert!(file.set_len(1).is_err(), "a sealed file shrank");
        // The same bytes elsewhere in memory are not the body's.
        assert!(find(&pattern(MIN + 1000)).is_none());
        // Once the last handle on the body's memory is gone, so is its registration.
        drop((part, registered, body));
        assert!(files().values().all(|file| file.len != MIN + 1000));
        let small = pattern(MIN - 1);
        assert_eq!(make_file(small.clone()), (small, 0));
    }

    /// The same memory registered twice shares one file: either registration's end leaves it
    /// found, and the last one's end leaves none. A shorter body at the same address is not
    /// registered.
    #[test]
    fn memory_registered_twice_is_found_until_both_are_gone() {
        let body = pattern(MIN + 3000);
        let (first, _) = make_file(body.clone());
        let (second, file_bytes) = make_file(body.clone());
        assert_eq!(file_bytes, 0, "a second file for the same memory");
        assert!(find(&first).is_some() && find(&second).is_some());
        let prefix = body.slice(..MIN + 10);
        assert_eq!(make_file(prefix.clone()).1, 0);
        drop(second);
        assert!(find(&first).is_some(), "the first registration was lost");
        let (third, _) = make_file(body.clone());
        drop(first);
        assert!(find(&third).is_some(), "the third registration was lost");
        drop(third);
        assert!(
            find(&body).is_none(),
            "a registration outlived its memory's handles"
        );
    }

    /// Heads, registered bodies and other bytes through `Conn`, to a reader slower than the
    /// writer, so the socket fills and `sendfile` stops part way and resumes.
    #[tokio::test]
    async fn a_connection_sends_registered_bodies_and_everything_around_them_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (registered, _) = make_file(pattern(3 * 1024 * 1024 + 17));
        let plain = pattern(200_000);
        let mut expected = Vec::new();
        let writer = {
            let registered = registered.clone();
            let plain = plain.clone();
            tokio::spawn(async move {
                let (stream, _) = listener.accept().await.expect("accept");
                // A small send buffer, so `sendfile` stops part way.
                socket2::SockRef::from(&stream)
                    .set_send_buffer_size(64 * 1024)
                    .expect("SO_SNDBUF");
                let mut conn = Conn::new(stream);
                let mut partial = 0;
                for round in 0..3 {
                    let head = format!("head {round}\r\n");
                    let slices = [
                        head.as_bytes(),
                        &registered[..],
                        b"between",
                        &registered[1000..MIN + 1000],
                        &plain[..],
                    ];
                    let mut parts: Vec<&[u8]> = slices.to_vec();
                    while !parts.is_empty() {
                        let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                        let mut n = conn.write_vectored(&iov).await.expect("write");
                        assert!(n > 0);
                        if parts[0].len() == registered.len() && n < parts[0].len() {
                            partial += 1;
                        }
                        while n > 0 {
                            if n >= parts[0].len() {
                                n -= parts[0].len();
                                parts.remove(0);
                            } else {
                                parts[0] = &parts[0][n..];
                                n = 0;
                            }
                        }
                    }
                }
                conn.shutdown().await.expect("shutdown");
                partial
            })
        };
        for round in 0..3 {
            expected.extend_from_slice(format!("head {round}\r\n").as_bytes());
            expected.extend_from_slice(&registered);
            expected.extend_from_slice(b"between");
            expected.extend_from_slice(&registered[1000..MIN + 1000]);
            expected.extend_from_slice(&plain);
        }
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut got = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = stream.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            if got.len() < 1024 * 1024 {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
        let partial = writer.await.expect("writer");
        assert!(partial > 0, "sendfile never stopped part way");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes differ");
        // Each round's registered slices went out with `sendfile`, but for what was left of
        // them under `MIN` after a partial send.
        let least = 3 * (registered.len() - MIN) as u64;
        assert!(sent() >= least, "{} bytes sent, {least} at least", sent());
    }
}
