//! indicatif progress bars behind the library's `Progress` hooks.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Instant;

/// One bar (or spinner) per stage, drawn on stderr; hidden when stderr is not a terminal. Also
/// keeps each stage's wall time, for the summary's "time by stage" line.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
    times: Mutex<Vec<(String, Instant, Option<f64>)>>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            current: Mutex::new(None),
            times: Mutex::new(Vec::new()),
        }
    }

    /// `(stage, wall seconds)` of every finished stage, in order.
    pub fn stage_times(&self) -> Vec<(String, f64)> {
        self.times
            .lock()
            .map(|t| {
                t.iter()
                    .filter_map(|(n, _, s)| s.map(|s| (n.clone(), s)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn close_stage(&self) {
        if let Ok(mut t) = self.times.lock() {
            if let Some((_, start, end @ None)) = t.last_mut() {
                *end = Some(start.elapsed().as_secs_f64());
            }
        }
    }
}

impl prep::build::Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let bar = if total > 0 {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        } else {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        };
        bar.set_prefix(name.to_string());
        self.close_stage();
        if let Ok(mut t) = self.times.lock() {
            t.push((name.to_string(), Instant::now(), None));
        }
        if let Ok(mut c) = self.current.lock() {
            if let Some(old) = c.replace(bar) {
                old.finish_and_clear();
            }
        }
    }

    fn advance(&self, n: u64) {
        if let Ok(c) = self.current.lock() {
            if let Some(b) = c.as_ref() {
                b.inc(n);
            }
        }
    }

    fn done(&self) {
        self.close_stage();
        if let Ok(mut c) = self.current.lock() {
            if let Some(b) = c.take() {
                b.finish_and_clear();
            }
        }
    }

    fn note(&self, text: &str) {
        match self.current.lock().ok().and_then(|c| c.clone()) {
            // Not `println`, which prints nothing when the bar is hidden (stderr not a terminal).
            Some(b) => b.suspend(|| eprintln!("note: {text}")),
            None => eprintln!("note: {text}"),
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Ok(mut c) = self.current.lock() {
            if let Some(b) = c.take() {
                b.finish_and_clear();
            }
        }
    }
}
