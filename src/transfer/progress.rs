//! Transfer progress: indicatif bars per layer on a terminal, plain lines otherwise, nothing
//! when quiet. Lines and bars go to stderr; stdout is for data.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bars on a terminal, else plain.
    Auto,
    /// One line per event.
    Plain,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// The mode for `--progress` and `-q`.
    pub fn from_flags(progress: Option<&str>, quiet: bool) -> Self {
        if quiet {
            return Mode::Quiet;
        }
        match progress {
            Some("plain") => Mode::Plain,
            Some("quiet") | Some("none") => Mode::Quiet,
            _ => Mode::Auto,
        }
    }
}

/// Progress of one command.
#[derive(Clone)]
pub struct Progress {
    bars: Option<Arc<MultiProgress>>,
    plain: bool,
}

/// Progress of one item (a layer).
pub struct Item {
    bar: Option<ProgressBar>,
    label: String,
    plain: bool,
}

impl Progress {
    /// Progress in `mode`.
    pub fn new(mode: Mode) -> Self {
        let tty = std::io::stderr().is_terminal();
        match mode {
            Mode::Auto if tty => Self {
                bars: Some(Arc::new(MultiProgress::with_draw_target(
                    ProgressDrawTarget::stderr(),
                ))),
                plain: false,
            },
            Mode::Auto | Mode::Plain => Self {
                bars: None,
                plain: true,
            },
            Mode::Quiet => Self {
                bars: None,
                plain: false,
            },
        }
    }

    /// Starts an item of `total` bytes.
    pub fn item(&self, label: &str, action: &str, total: u64) -> Item {
        let bar = self.bars.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b.set_message(action.to_string());
            b
        });
        Item {
            bar,
            label: label.to_string(),
            plain: self.plain,
        }
    }
}

impl Item {
    /// Adds `n` bytes done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Goes back to `pos` bytes (a restarted download).
    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// Ends the item with a status word ("Pull complete", "Pushed", "Already exists").
    pub fn finish(&self, status: &str) {
        if let Some(b) = &self.bar {
            b.set_style(
                ProgressStyle::with_template("{prefix} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.finish_with_message(status.to_string());
        } else if self.plain {
            eprintln!("{}: {status}", self.label);
        }
    }
}
