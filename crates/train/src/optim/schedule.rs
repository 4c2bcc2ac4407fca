//! The learning-rate schedules (`train.schedule`: step, cosine, one-cycle, with warmup),
//! evaluated at every step.

use crate::config::{Schedule, TrainSection};
use std::f64::consts::PI;

/// The learning rate of `t`'s schedule at `progress` epochs into training (fractional: the
/// trainer asks at every step, epoch + step / steps per epoch).
pub fn learning_rate(t: &TrainSection, progress: f64) -> f64 {
    let total = t.epochs as f64;
    let cos_between = |from: f64, to: f64, frac: f64| {
        to + (from - to) * 0.5 * (1.0 + (PI * frac.clamp(0.0, 1.0)).cos())
    };
    match t.schedule {
        Schedule::Step | Schedule::Cosine if progress < t.warmup_epochs => {
            t.lr * (progress / t.warmup_epochs)
        }
        Schedule::Step => {
            if progress >= t.lr_step_epoch as f64 {
                t.lr * t.lr_gamma
            } else {
                t.lr
            }
        }
        Schedule::Cosine => {
            let span = (total - t.warmup_epochs).max(f64::MIN_POSITIVE);
            cos_between(t.lr, 0.0, (progress - t.warmup_epochs) / span)
        }
        Schedule::Onecycle => {
            // OneCycleLR's defaults: div_factor 25, final_div_factor 1e4, pct_start 0.3.
            let rise = if t.warmup_epochs > 0.0 {
                t.warmup_epochs.min(total)
            } else {
                0.3 * total
            };
            let start = t.lr / 25.0;
            if progress < rise {
                cos_between(start, t.lr, progress / rise)
            } else {
                let span = (total - rise).max(f64::MIN_POSITIVE);
                cos_between(t.lr, start / 1e4, (progress - rise) / span)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(schedule: Schedule, warmup: f64) -> TrainSection {
        TrainSection {
            epochs: 10,
            lr: 1.0,
            schedule,
            warmup_epochs: warmup,
            lr_step_epoch: 6,
            lr_gamma: 0.1,
            ..TrainSection::default()
        }
    }

    /// Known answers of each schedule at its corners and midpoints.
    #[test]
    fn schedules_hit_their_known_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let step = section(Schedule::Step, 0.0);
        assert!(close(learning_rate(&step, 5.99), 1.0));
        assert!(close(learning_rate(&step, 6.0), 0.1));
        let warm = section(Schedule::Step, 2.0);
        assert!(close(learning_rate(&warm, 0.5), 0.25));
        assert!(close(learning_rate(&warm, 2.0), 1.0));
        let cos = section(Schedule::Cosine, 2.0);
        assert!(close(learning_rate(&cos, 1.0), 0.5));
        assert!(close(learning_rate(&cos, 2.0), 1.0));
        assert!(close(learning_rate(&cos, 6.0), 0.5));
        assert!(close(learning_rate(&cos, 10.0), 0.0));
        let one = section(Schedule::Onecycle, 0.0);
        assert!(close(learning_rate(&one, 0.0), 1.0 / 25.0));
        assert!(close(learning_rate(&one, 3.0), 1.0));
        assert!(close(learning_rate(&one, 1.5), (1.0 / 25.0 + 1.0) / 2.0));
        assert!(close(learning_rate(&one, 10.0), 1.0 / 25.0 / 1e4));
        assert!(close(
            learning_rate(&one, 6.5),
            (1.0 + 1.0 / 25.0 / 1e4) / 2.0
        ));
    }
}
