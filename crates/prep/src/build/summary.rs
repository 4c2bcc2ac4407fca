//! The counts of a build (stored in the manifest as `extra.summary`).

use super::*;

/// Counts of one build, stored in the manifest (`extra.summary`) and printed as the final table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Inputs the parser saw.
    pub seen: u64,
    /// Samples in the cache.
    pub cached: u64,
    /// Inputs left out by the protocol, by reason.
    pub excluded: BTreeMap<String, u64>,
    /// Inputs that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Samples by split (or fold) and class.
    pub split_class: BTreeMap<String, BTreeMap<String, u64>>,
    /// Coverage of the authors' fold list, when one was used.
    pub folds: Option<FoldCoverage>,
    /// Duplicate inputs found (and dropped, by the dedup mode); `duplicates.parquet` lists them.
    #[serde(default)]
    pub duplicates: crate::dedup::DuplicateCounts,
}

impl Summary {
    /// Number of failed inputs.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Number of excluded inputs.
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
    }

    /// Failures over inputs that were meant to become samples (excluded inputs do not count).
    pub fn failure_rate(&self) -> f64 {
        let attempted = self.cached + self.failed_total();
        if attempted == 0 {
            0.0
        } else {
            self.failed_total() as f64 / attempted as f64
        }
    }

    /// seen = cached + excluded + failed.
    pub fn adds_up(&self) -> bool {
        self.seen == self.cached + self.excluded_total() + self.failed_total()
    }

    /// Why these counts fail `policy`, or None when they pass. A whole build (not a part of one)
    /// with no sample always fails.
    pub fn failure(&self, policy: &FailurePolicy, whole: bool) -> Option<String> {
        let failed = self.failed_total();
        if !self.adds_up() {
            return Some(format!(
                "inputs do not add up: seen {} ≠ cached {} + excluded {} + failed {failed}",
                self.seen,
                self.cached,
                self.excluded_total()
            ));
        }
        if whole && self.cached == 0 {
            return Some(format!(
                "no input became a sample ({} seen, {} excluded, {failed} failed)",
                self.seen,
                self.excluded_total()
            ));
        }
        if policy.strict && failed > 0 {
            return Some(format!("--strict: {failed} inputs failed"));
        }
        if self.failure_rate() > policy.max_failure_rate {
            return Some(format!(
                "{failed} of {} attempted inputs failed ({:.1} %), above the limit of {:.1} % \
                 (--max-failure-rate)",
                self.cached + failed,
                100.0 * self.failure_rate(),
                100.0 * policy.max_failure_rate
            ));
        }
        None
    }

    pub(super) fn count_failure(&mut self, f: &FailureRow) {
        let m = if f.stage == STAGE_EXCLUDE {
            &mut self.excluded
        } else {
            &mut self.failed
        };
        *m.entry(f.reason.clone()).or_default() += 1;
    }

    pub(super) fn add(&mut self, other: &Summary) {
        self.seen += other.seen;
        self.cached += other.cached;
        for (k, v) in &other.excluded {
            *self.excluded.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.failed {
            *self.failed.entry(k.clone()).or_default() += v;
        }
        for (s, m) in &other.split_class {
            for (c, v) in m {
                *self
                    .split_class
                    .entry(s.clone())
                    .or_default()
                    .entry(c.clone())
                    .or_default() += v;
            }
        }
        if self.folds.is_none() {
            self.folds.clone_from(&other.folds);
        }
        // Every part finds the duplicates of the whole inventory: the same counts, not a share.
        if self.duplicates == crate::dedup::DuplicateCounts::default() {
            self.duplicates.clone_from(&other.duplicates);
        }
    }
}

/// Summary stored in a manifest by an earlier build.
pub fn stored_summary(m: &Manifest) -> Option<Summary> {
    serde_json::from_value(m.extra.get("summary")?.clone()).ok()
}
