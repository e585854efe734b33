//! Serving one address from several threads, as nginx's workers do: each thread has its own
//! event loop and its own listening socket on the address (`SO_REUSEPORT`), and the kernel
//! spreads new connections over them; `share` evens out its uneven split. Also the process
//! settings such serving needs: the open-files limit and the cores a thread may run on.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot::Receiver;
use tokio::sync::{Semaphore, watch};

use crate::listener::{Handler, How, Limits, serve_with};
use crate::share::{Share, Spread};
use crate::timer::{self, Coarse};

/// Raises this process's limit on open files to its hard limit, as servers that hold many
/// connections do (nginx's `worker_rlimit_nofile`): the usual soft limit, 1024, is far below
/// `Limits::SITES.max_connections`, and past it `accept` fails. Returns the limit in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // Linux refuses more than `fs.nr_open`, 2^20 by default, even to an unlimited hard limit.
    const MOST: u64 = 1 << 20;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let wanted = hard.min(MOST);
    if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
        return Some(wanted);
    }
    Some(soft)
}

/// The threads of `serve_on_threads`, until they have all stopped.
pub type Serving = std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// What one serving thread returns when it stops.
type Stopped = Receiver<std::io::Result<()>>;

/// Serves a `handler()` per thread on `addr` from `threads` threads, spread as `spread` says.
/// A connection stays on one thread, the one that accepted it or the one it was handed to then
/// (`share`), so no request waits for another thread or wakes one. Returns once the sockets are
/// bound; the threads serve until `shutdown` completes, and the returned future ends when all
/// of them have stopped.
pub fn serve_on_threads<H: Handler>(
    addr: SocketAddr,
    threads: usize,
    spread: Spread,
    handler: impl Fn() -> H,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, Serving)> {
    let threads = threads.max(1);
    let cores = cores_for(spread, threads)?;
    let core = |i: usize| cores.get(i).copied();
    let (bound, sockets) = bind(addr, threads, core)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut done = Vec::with_capacity(threads);
    for ((i, socket), share) in sockets
        .into_iter()
        .enumerate()
        .zip(Share::split(threads, spread))
    {
        let how = How {
            limits,
            slots: slots.clone(),
            share: Some(share),
        };
        let thread = Thread {
            index: i,
            core: core(i),
            all_cores: &cores,
        };
        done.push(thread.start(socket, handler(), how, stopped.clone())?);
    }
    Ok((bound, Box::pin(supervise(done, stop, shutdown))))
}

/// Under `Spread::Cpu`, thread `i` runs on the `i`th core this process may use; otherwise on
/// any (no cores named).
fn cores_for(spread: Spread, threads: usize) -> std::io::Result<Vec<usize>> {
    let cores = match spread {
        Spread::Even => return Ok(Vec::new()),
        Spread::Cpu => usable_cores()?,
    };
    if threads > cores.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{threads} serving threads on {} usable cores: spread by core, each thread needs a core of its own",
                cores.len()
            ),
        ));
    }
    Ok(cores)
}

/// One listening socket per thread on `addr`, bound and listening here, so a taken address is
/// an error now rather than in a thread and connections queue from the start; the first socket
/// fixes the port when `addr` asks for any. Returns the address bound.
fn bind(
    addr: SocketAddr,
    threads: usize,
    core: impl Fn(usize) -> Option<usize>,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    // `SO_REUSEPORT` would let these sockets join another process's on the same port (the
    // kernel would split the traffic between them): a plain bind first says whether the
    // address is taken.
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr)?);
    }
    let mut sockets = Vec::with_capacity(threads);
    let mut bound = addr;
    for i in 0..threads {
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if let Some(core) = core(i) {
            // The kernel (6.2 and later) prefers, among the sockets on the port, the one whose
            // core received the connection's first packet.
            socket.set_cpu_affinity(core).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "asking for the connections core {core} receives (SO_INCOMING_CPU): {e}"
                    ),
                )
            })?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&bound.into())?;
        socket.listen(1024)?;
        let listener = std::net::TcpListener::from(socket);
        bound = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok((bound, sockets))
}

/// A serving thread to start: its number, and the core it runs on under `Spread::Cpu`.
struct Thread<'c> {
    index: usize,
    core: Option<usize>,
    all_cores: &'c [usize],
}

impl Thread<'_> {
    /// Starts the thread with a current-thread runtime of its own, serving `handler` on
    /// `socket` until `stopped` says stop.
    fn start<H: Handler>(
        self,
        socket: std::net::TcpListener,
        handler: H,
        how: How,
        mut stopped: watch::Receiver<bool>,
    ) -> std::io::Result<Stopped> {
        let (finished, on_finish) = tokio::sync::oneshot::channel();
        let mut runtime = tokio::runtime::Builder::new_current_thread();
        if self.core.is_some() {
            // The thread this runtime starts for blocking work (reading files) would inherit
            // the serving thread's core; it may use any.
            let cores = self.all_cores.to_vec();
            runtime.on_thread_start(move || pin_to(&cores));
        }
        let runtime = runtime.enable_all().build()?;
        let core = self.core;
        std::thread::Builder::new()
            .name(format!("serve-{}", self.index))
            .spawn(move || {
                if let Some(core) = core {
                    pin_to(&[core]);
                }
                let served = runtime.block_on(async move {
                    let listener = TcpListener::from_std(socket)?;
                    let stop = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    // This thread's connections stay on it, and so do their deadlines.
                    let sweeping = tokio::spawn(timer::sweep());
                    let service = move |_: &TcpStream| handler.clone();
                    let served = serve_with(listener, service, how, Coarse, stop).await;
                    sweeping.abort();
                    served
                });
                let _ = finished.send(served);
            })?;
        Ok(on_finish)
    }
}

/// Until `shutdown`, a thread that stops has failed (or panicked): the others stop too, and the
/// failure is the answer. Ends when every thread has stopped.
async fn supervise(
    done: Vec<Stopped>,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut running: FuturesUnordered<_> = done.into_iter().collect();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut stopping = false;
    let mut failure = None;
    loop {
        tokio::select! {
            () = &mut shutdown, if !stopping => {
                stopping = true;
                let _ = stop.send(true);
            }
            finished = running.next() => {
                let Some(finished) = finished else { break };
                let failed = match finished {
                    Ok(Ok(())) if stopping => None,
                    Ok(Ok(())) => Some(std::io::Error::other("a serving thread stopped")),
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(std::io::Error::other("a serving thread panicked")),
                };
                if let Some(e) = failed {
                    tracing::error!(error = %e, "serving failed; stopping");
                    failure.get_or_insert(e);
                    stopping = true;
                    let _ = stop.send(true);
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The cores this process may run on, in order (of the first 1024).
pub fn usable_cores() -> std::io::Result<Vec<usize>> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("reading the cores this process may use: {e}"),
        )
    })?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&core| allowed.is_set(core).unwrap_or(false))
        .collect())
}

/// Keeps the calling thread on `cores`; where that fails, it runs where the kernel puts it.
fn pin_to(cores: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    let pinned = cores
        .iter()
        .try_for_each(|&core| set.set(core))
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    if let Err(e) = pinned {
        tracing::warn!(
            ?cores,
            error = %e,
            "keeping a thread on its cores failed, so connections may cross cores; check the \
             process's CPU set (taskset, cgroup cpuset)"
        );
    }
}
