//! Progress lines on stderr for the long steps outside training (embedding a large set, the
//! few-label table, t-SNE, SVM grids), in the manner of the training line. Off by default in
//! the library; the command line turns them on unless `-q`. A step that ends within a second
//! prints nothing (`CONTRA_PROGRESS_AFTER` sets that delay in seconds).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turn progress lines on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether progress lines are on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// One long step: `what` done over `total` units.
pub struct Task {
    what: String,
    unit: &'static str,
    total: usize,
    done: usize,
    started: Instant,
    after: f64,
    last_print: Option<Instant>,
    terminal: bool,
    enabled: bool,
}

impl Task {
    /// A step of `total` `unit`s (`embedding`, 50000, `images`).
    pub fn new(what: impl Into<String>, total: usize, unit: &'static str) -> Self {
        Self {
            what: what.into(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
            after: std::env::var("CONTRA_PROGRESS_AFTER")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1.0),
            last_print: None,
            terminal: std::io::stderr().is_terminal(),
            enabled: enabled(),
        }
    }

    /// `n` more units done.
    pub fn advance(&mut self, n: usize) {
        self.done = (self.done + n).min(self.total);
        if !self.enabled {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let interval = if self.terminal { 0.2 } else { 10.0 };
        let due = elapsed >= self.after
            && (self.done == self.total
                || self
                    .last_print
                    .is_none_or(|t| t.elapsed().as_secs_f64() >= interval));
        if !due {
            return;
        }
        self.last_print = Some(Instant::now());
        let rate = self.done as f64 / elapsed.max(1e-9);
        let eta = (self.total - self.done) as f64 / rate.max(1e-9);
        let line = format!(
            "{} {}/{} {} ({:.0}/s, ETA {:.0} s)",
            self.what, self.done, self.total, self.unit, rate, eta
        );
        let mut err = std::io::stderr();
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.terminal && self.last_print.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}
