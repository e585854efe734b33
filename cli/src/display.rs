//! How a deployment looks while it runs. On a terminal: a spinner with the phase and elapsed
//! time, the build log scrolling above it. Elsewhere (CI): plain lines, no escape codes. Either
//! way on stderr: stdout is kept for the result.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scalemesh_core::wire::{LogLine, Progress};
use scalemesh_core::{DeploymentStatus, Phase};

use crate::escape::{colors_wanted, sanitize};

/// What comes before each build log line in `deploy`'s output.
pub const GUTTER: &str = "│ ";
const DIM_GUTTER: &str = "\u{1b}[2m│\u{1b}[0m ";

pub struct DeployView {
    bar: Option<ProgressBar>,
    colors: bool,
    phase: Option<Phase>,
    /// Quarters of an upload said so far, as plain lines (CI).
    upload_told: std::sync::atomic::AtomicU64,
}

impl DeployView {
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal()
            && std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false");
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            let style = ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message("queued");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            bar,
            colors: colors_wanted(tty),
            phase: None,
            upload_told: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A line of ours (not of the build), above the spinner.
    pub fn note(&self, text: &str) {
        self.print(|out| writeln!(out, "{text}"));
    }

    /// The build's log lines, each under a gutter: a build cannot print a line that starts
    /// where the CLI's own lines do (`✓ Live in …`, `==> done`), nor an escape code that would
    /// move back over the gutter.
    pub fn lines(&self, lines: &[LogLine]) {
        let colors = self.colors;
        let gutter = if colors { DIM_GUTTER } else { GUTTER };
        self.print(|out| {
            for line in lines {
                writeln!(out, "{gutter}{}", sanitize(&line.text, colors))?;
            }
            Ok(())
        });
    }

    pub fn state(&mut self, _status: DeploymentStatus, phase: Phase, progress: Option<Progress>) {
        let label = match (phase, progress) {
            (Phase::Uploading, Some(p)) => format!("uploading {}/{} files", p.done, p.total),
            (phase, _) => phase.label().to_owned(),
        };
        match &self.bar {
            Some(bar) => bar.set_message(label),
            None => {
                // The end of a deployment has a line of its own (`==> Live at …`, or why not).
                if self.phase != Some(phase) && phase != Phase::Done {
                    self.note(&format!("==> {}", phase.label()));
                }
            }
        }
        self.phase = Some(phase);
    }

    /// How far an upload of files is: a bar of files and bytes on a terminal, a line at each
    /// quarter elsewhere.
    pub fn upload(&self, p: scalemesh_core::upload::Progress) {
        use scalemesh_core::words::human_bytes;
        let bytes = format!("{}/{}", human_bytes(p.bytes), human_bytes(p.bytes_total));
        match &self.bar {
            Some(bar) => {
                if bar.length() != Some(p.files_total) {
                    let style = ProgressStyle::with_template(
                        "{spinner:.cyan} uploading [{bar:30.cyan/blue}] {pos}/{len} files, {msg} {elapsed:.dim}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                    bar.set_style(style);
                    bar.set_length(p.files_total);
                }
                bar.set_position(p.files);
                bar.set_message(bytes);
            }
            None => {
                use std::sync::atomic::Ordering;
                let quarter = (p.files * 4).checked_div(p.files_total).unwrap_or(4);
                let told = self.upload_told.load(Ordering::Relaxed);
                let first = p.files == 0 && told == 0;
                if (quarter > told || first)
                    && self
                        .upload_told
                        .compare_exchange(
                            told,
                            quarter.max(1),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    self.note(&format!(
                        "==> uploading {}/{} files, {bytes}",
                        p.files, p.files_total
                    ));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// The closing line of a deployment that went well.
    pub fn success(&self, text: &str) {
        self.finish();
        if self.colors {
            eprintln!("\u{1b}[32m✓\u{1b}[0m {text}");
        } else if self.bar.is_some() {
            eprintln!("✓ {text}");
        } else {
            eprintln!("==> {text}");
        }
    }

    fn print(&self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        let write = || {
            let stderr = std::io::stderr();
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, stderr.lock());
            let _ = f(&mut out);
            let _ = out.flush();
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
