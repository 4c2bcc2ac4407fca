//! `train run --max-steps N`: a real run stopped after N training steps, with the figures that
//! say whether the loader scales (docs/BENCHMARKS.md, "Training memory and cache size"): the time
//! from the command's start to the first finished step, the steady samples/s after it, and the
//! peak resident memory of the process: all of it (VmHWM, which counts the pages of libtorch's
//! shared libraries that happen to be touched, ±50 MB from run to run) and its anonymous part
//! (RssAnon: what the process allocated itself, sampled after every step), which is what grows
//! when something is held per record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use train::outputs::EpochRecord;
use train::trainer::{StopToken, TrainProgress};

/// Counts steps for an inner progress, and trips `stop` after `max` of them.
pub(crate) struct StepLimit<'a> {
    inner: &'a dyn TrainProgress,
    max: u64,
    stop: StopToken,
    started: Instant,
    steps: AtomicU64,
    samples: AtomicU64,
    /// Largest RssAnon seen after a step, KiB.
    peak_anon_kib: AtomicU64,
    /// Time and samples at the first step (start-up ends there).
    first: OnceLock<(Duration, u64)>,
    last: std::sync::Mutex<Duration>,
}

/// What a step-limited run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct StepFigures {
    pub steps: u64,
    pub samples: u64,
    /// From the command's start to the end of the first training step.
    pub first_step_s: f64,
    /// Samples per second from the end of the first step to the end of the last.
    pub samples_per_s: f64,
    /// Peak resident set of the process (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Largest anonymous resident set (RssAnon) after any step, MiB.
    pub peak_anon_mib: f64,
    /// Resident set now (VmRSS), MiB.
    pub rss_mib: f64,
}

impl<'a> StepLimit<'a> {
    pub(crate) fn new(
        inner: &'a dyn TrainProgress,
        max: u64,
        stop: StopToken,
        started: Instant,
    ) -> Self {
        StepLimit {
            inner,
            max,
            stop,
            started,
            steps: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            peak_anon_kib: AtomicU64::new(0),
            first: OnceLock::new(),
            last: std::sync::Mutex::new(Duration::ZERO),
        }
    }

    /// Steps done so far.
    pub(crate) fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    pub(crate) fn figures(&self) -> StepFigures {
        let steps = self.steps();
        let samples = self.samples.load(Ordering::Relaxed);
        let (t0, s0) = self.first.get().copied().unwrap_or_default();
        let last = self.last.lock().map(|g| *g).unwrap_or_default();
        let span = last.saturating_sub(t0).as_secs_f64();
        StepFigures {
            steps,
            samples,
            first_step_s: t0.as_secs_f64(),
            samples_per_s: if span > 0.0 {
                (samples - s0) as f64 / span
            } else {
                0.0
            },
            peak_rss_mib: proc_status_kib("VmHWM:") / 1024.0,
            peak_anon_mib: self
                .peak_anon_kib
                .load(Ordering::Relaxed)
                .max(proc_status_kib("RssAnon:") as u64) as f64
                / 1024.0,
            rss_mib: proc_status_kib("VmRSS:") / 1024.0,
        }
    }
}

impl TrainProgress for StepLimit<'_> {
    fn epoch_start(&self, fold: &str, epoch: usize, epochs: usize, batches: u64) {
        self.inner.epoch_start(fold, epoch, epochs, batches);
    }
    fn batch_done(&self, samples: u64) {
        self.inner.batch_done(samples);
        let now = self.started.elapsed();
        let total = self.samples.fetch_add(samples, Ordering::Relaxed) + samples;
        self.first.get_or_init(|| (now, total));
        if let Ok(mut g) = self.last.lock() {
            *g = now;
        }
        self.peak_anon_kib
            .fetch_max(proc_status_kib("RssAnon:") as u64, Ordering::Relaxed);
        if self.steps.fetch_add(1, Ordering::Relaxed) + 1 >= self.max {
            self.stop.stop();
        }
    }
    fn epoch_end(&self, record: &EpochRecord) {
        self.inner.epoch_end(record);
    }
    fn note(&self, text: &str) {
        self.inner.note(text);
    }
}

/// A `/proc/self/status` field in KiB (0 where there is none: not Linux).
fn proc_status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}
