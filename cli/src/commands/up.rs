//! `scalemesh up` and `scalemesh down`: a server on this machine, in the background, with its
//! log and pid in its data directory.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use anyhow::Context;
use scalemesh_core::local::ADMIN_TOKEN_FILE;
use url::Url;

use crate::args::UpArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::settings::Settings;

const PID_FILE: &str = "server.pid";
const LOG_FILE: &str = "server.log";

pub async fn up(settings: &Settings, args: UpArgs) -> anyhow::Result<i32> {
    let plan = plan(settings, &args.server_args)?;
    let mut local = settings.clone();
    local.api_url = plan.api_url.clone();
    let client = Client::new(&local)?;
    if let Ok(health) = client.health().await {
        eprintln!("Scale Mesh is already running.");
        eprint!("{}", plan.summary(settings, &health.sites));
        return Ok(0);
    }
    let server = server_binary()?;
    let mut cmd = std::process::Command::new(&server);
    cmd.env("SCALEMESH_LISTEN", &plan.listen)
        .env("SCALEMESH_DATA_DIR", &plan.data_dir)
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
            .create(&plan.data_dir)
            .with_context(|| format!("creating {}", plan.data_dir.display()))?;
    }
    let log_path = plan.data_dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    cmd.stdout(log.try_clone()?).stderr(log).process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let pid_path = plan.data_dir.join(PID_FILE);
    std::fs::write(&pid_path, format!("{}\n", child.id()))?;

    let started = Instant::now();
    let health = loop {
        if let Ok(health) = client.health().await {
            break health;
        }
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(&pid_path);
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
            // A server nobody can reach is no use, and would hold its ports: stop it.
            if let Ok(pid) = i32::try_from(child.id()) {
                let group = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait();
            let _ = std::fs::remove_file(&pid_path);
            return Err(CliError::new(format!(
                "scalemesh-server did not answer at {} within 20s, so it was stopped",
                plan.api_url
            ))
            .hint(format!("see its log in {}", log_path.display()))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("Scale Mesh is up.");
    eprint!("{}", plan.summary(settings, &health.sites));
    Ok(0)
}

/// Where a server `up` starts will listen and keep its data, from the API URL and data folder
/// the CLI uses, unless the flags for the server (after `--`) say otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// `SCALEMESH_LISTEN` for the server.
    listen: String,
    /// Where to reach it.
    api_url: Url,
    data_dir: PathBuf,
}

fn plan(settings: &Settings, server_args: &[String]) -> anyhow::Result<Plan> {
    let data_dir = flag(server_args, "--data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| settings.data_dir.clone());
    let Some(listen) = flag(server_args, "--listen") else {
        return Ok(Plan {
            listen: listen_addr(&settings.api_url)?,
            api_url: settings.api_url.clone(),
            data_dir,
        });
    };
    let addr: SocketAddr = listen.parse().map_err(|_| {
        CliError::new(format!("--listen {listen:?} is not an address"))
            .hint("give it as host:port, e.g. -- --listen 127.0.0.1:9100")
            .code(2)
    })?;
    // A server on every address is reached on this machine through the loopback one.
    let reach = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    };
    let api_url = Url::parse(&format!("http://{reach}"))
        .map_err(|e| CliError::new(format!("--listen {listen:?}: {e}")).code(2))?;
    Ok(Plan {
        listen: listen.to_owned(),
        api_url,
        data_dir,
    })
}

impl Plan {
    /// What a person needs next: where the API, the web page and the sites are, where the
    /// token and the log are, and how to point other commands at this server.
    fn summary(&self, settings: &Settings, sites: &str) -> String {
        let api = self.api_url.as_str().trim_end_matches('/');
        let token = self.data_dir.join(ADMIN_TOKEN_FILE);
        let mut lines = vec![
            format!("  API          {api}"),
            format!("  Web page     {api}/  (sign in with the admin token)"),
        ];
        if !sites.is_empty() {
            lines.push(format!("  Sites        {sites}"));
        }
        lines.push(format!("  Admin token  {}", token.display()));
        lines.push(format!(
            "  Log          {}",
            self.data_dir.join(LOG_FILE).display()
        ));
        if sites.contains(".localhost") {
            lines.push(
                "Browsers and curl find *.localhost on this machine; other programs may not \
                 (send the request to 127.0.0.1 with the site's name in the Host header)."
                    .to_owned(),
            );
        }
        let same_api = self.api_url.as_str().trim_end_matches('/')
            == settings.api_url.as_str().trim_end_matches('/');
        if !same_api || self.data_dir != settings.data_dir {
            let mut env = Vec::new();
            if !same_api {
                env.push(format!("SCALEMESH_API_URL={api}"));
            }
            if self.data_dir != settings.data_dir {
                env.push(format!("SCALEMESH_DATA_DIR={}", self.data_dir.display()));
            }
            lines.push(format!(
                "Other commands talk to {} unless told: export {}",
                settings.api_url.as_str().trim_end_matches('/'),
                env.join(" ")
            ));
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

/// The value of `--name value` or `--name=value` in the server's flags (the last one wins, as
/// it does for the server).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == name {
            found = it.next().map(String::as_str);
        } else if let Some(value) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(value);
        }
    }
    found
}

pub async fn down(settings: &Settings) -> anyhow::Result<i32> {
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
    eprintln!("Scale Mesh stopped");
    Ok(0)
}

/// The address the server should listen on: the API URL's, which must be this machine.
fn listen_addr(url: &Url) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::TokenSource;

    fn settings() -> Settings {
        Settings {
            api_url: Url::parse("http://127.0.0.1:9000").expect("url"),
            token: None,
            token_source: TokenSource::None,
            data_dir: PathBuf::from("/data"),
            config_path: None,
        }
    }

    #[test]
    fn the_server_flags_decide_where_up_waits() {
        let cases: &[(&[&str], &str, &str, &str)] = &[
            (&[], "127.0.0.1:9000", "http://127.0.0.1:9000/", "/data"),
            (
                &["--listen", "127.0.0.1:9100"],
                "127.0.0.1:9100",
                "http://127.0.0.1:9100/",
                "/data",
            ),
            (
                &["--listen=0.0.0.0:9200", "--data-dir", "/other"],
                "0.0.0.0:9200",
                "http://127.0.0.1:9200/",
                "/other",
            ),
            (
                &["--listen", "[::]:9300", "--proxy-listen", "127.0.0.1:8181"],
                "[::]:9300",
                "http://[::1]:9300/",
                "/data",
            ),
            (
                &["--listen", "127.0.0.1:1", "--listen", "127.0.0.1:9400"],
                "127.0.0.1:9400",
                "http://127.0.0.1:9400/",
                "/data",
            ),
        ];
        for (args, listen, url, data) in cases {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            let plan = plan(&settings(), &args).expect("plan");
            assert_eq!(plan.listen, *listen, "{args:?}");
            assert_eq!(plan.api_url.as_str(), *url, "{args:?}");
            assert_eq!(plan.data_dir, PathBuf::from(data), "{args:?}");
        }
        let bad = vec!["--listen".to_owned(), "nine-thousand".to_owned()];
        assert!(plan(&settings(), &bad).is_err());
    }

    #[test]
    fn the_summary_says_how_to_reach_a_server_elsewhere() {
        let same = plan(&settings(), &[]).expect("plan");
        let text = same.summary(&settings(), "http://<project>.localhost:8080");
        assert!(text.contains("http://<project>.localhost:8080"), "{text}");
        assert!(text.contains("/data/admin-token"), "{text}");
        assert!(
            text.contains("Web page     http://127.0.0.1:9000/"),
            "{text}"
        );
        assert!(!text.contains("export"), "{text}");
        let args = vec!["--listen".to_owned(), "127.0.0.1:9100".to_owned()];
        let moved = plan(&settings(), &args).expect("plan");
        let text = moved.summary(&settings(), "http://<project>.localhost:8181");
        assert!(
            text.contains("export SCALEMESH_API_URL=http://127.0.0.1:9100"),
            "{text}"
        );
    }
}
