//! `scalemesh up` and `scalemesh down`: a server on this machine, in the background, with its
//! log and pid in its data directory.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::args::UpArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::settings::Settings;

const PID_FILE: &str = "server.pid";
const LOG_FILE: &str = "server.log";

pub async fn up(client: &Client, settings: &Settings, args: UpArgs) -> anyhow::Result<i32> {
    if client.health().await.is_ok() {
        eprintln!("Scale Mesh is already running at {}", settings.api_url);
        return Ok(0);
    }
    let listen = listen_addr(settings)?;
    let server = server_binary()?;
    let mut cmd = std::process::Command::new(&server);
    cmd.env("SCALEMESH_LISTEN", &listen)
        .env("SCALEMESH_DATA_DIR", &settings.data_dir)
        .args(&args.server_args)
        .stdin(Stdio::null());
    if args.foreground {
        let err = cmd.exec();
        return Err(anyhow::Error::new(err).context(format!("starting {}", server.display())));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&settings.data_dir)
            .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    }
    let log_path = settings.data_dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    cmd.stdout(log.try_clone()?).stderr(log).process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    std::fs::write(
        settings.data_dir.join(PID_FILE),
        format!("{}\n", child.id()),
    )?;

    let started = Instant::now();
    loop {
        if client.health().await.is_ok() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(CliError::new(format!(
                "scalemesh-server stopped right away ({status}):\n{}",
                tail.join("\n")
            ))
            .hint(format!("its whole log is in {}", log_path.display()))
            .into());
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(CliError::new("scalemesh-server did not answer within 20s")
                .hint(format!("see its log in {}", log_path.display()))
                .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "Scale Mesh is up: API {}, sites at http://<project>.localhost:8080, log in {}",
        settings.api_url,
        log_path.display()
    );
    Ok(0)
}

pub async fn down(client: &Client, settings: &Settings) -> anyhow::Result<i32> {
    let pid_path = settings.data_dir.join(PID_FILE);
    let Some(pid) = std::fs::read_to_string(&pid_path)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        eprintln!(
            "No server started by `scalemesh up` is known in {}",
            settings.data_dir.display()
        );
        return Ok(0);
    };
    let pid = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
        let _ = std::fs::remove_file(&pid_path);
        eprintln!("The server had stopped already");
        return Ok(0);
    }
    let started = Instant::now();
    while nix::sys::signal::kill(pid, None).is_ok() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_file(&pid_path);
    let _ = client;
    eprintln!("Scale Mesh stopped");
    Ok(0)
}

/// The address the server should listen on: the API URL's, which must be this machine.
fn listen_addr(settings: &Settings) -> anyhow::Result<String> {
    let url = &settings.api_url;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    if !local || url.scheme() != "http" {
        return Err(CliError::new(format!(
            "`scalemesh up` starts a server on this machine, but the API URL is {url}"
        ))
        .hint("leave --api-url / SCALEMESH_API_URL unset, or set it to http://127.0.0.1:<port>")
        .into());
    }
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    Ok(format!(
        "{host}:{}",
        url.port_or_known_default().unwrap_or(9000)
    ))
}

/// `scalemesh-server` beside this binary, else on PATH.
fn server_binary() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("scalemesh-server")))
        .filter(|p| p.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("scalemesh-server"))
                .find(|p| p.is_file())
        })
    };
    beside.or_else(on_path).ok_or_else(|| {
        CliError::new("scalemesh-server is not installed beside scalemesh nor on PATH")
            .hint("install all of Scale Mesh with ./install.sh")
            .into()
    })
}
