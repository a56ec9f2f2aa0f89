//! A one-line progress display on stderr: step, epoch, loss, learning rate, images/s, ETA.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    enabled: bool,
    terminal: bool,
    total: u64,
    last_print: Option<Instant>,
    started: Instant,
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

impl Progress {
    pub fn new(enabled: bool, total: u64) -> Self {
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            total,
            last_print: None,
            started: Instant::now(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        step: u64,
        epoch: u64,
        epochs: u64,
        loss: f32,
        lr: f64,
        images_per_second: f64,
        steps_here: u64,
    ) {
        if !self.enabled {
            return;
        }
        let interval = if self.terminal { 0.2 } else { 10.0 };
        let due = self
            .last_print
            .is_none_or(|t| t.elapsed().as_secs_f64() >= interval)
            || step == self.total;
        if !due {
            return;
        }
        self.last_print = Some(Instant::now());
        let per_step = self.started.elapsed().as_secs_f64() / steps_here.max(1) as f64;
        let eta = per_step * (self.total - step) as f64;
        let width = 24;
        let filled = (width as u64 * step / self.total.max(1)) as usize;
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
        let line = format!(
            "[{bar}] step {step}/{} epoch {epoch}/{epochs} loss {loss:.4} lr {lr:.4} {images_per_second:.0} views/s ETA {}",
            self.total,
            clock(eta)
        );
        let mut err = std::io::stderr();
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    pub fn finish(&mut self) {
        if self.enabled && self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
