//! Starting a run from a trained model (`model.init_from`): which tensors carry over, checked
//! before the run starts, and copied into each fold's fresh network after its init.
//!
//! A tensor carries over when the source has one of the same name and shape. The class heads
//! ([`ModelConfig::class_head_prefixes`]) carry over only when both sides hold the same classes
//! (matched by name, [`crate::classes`]); in another order their rows are reordered, and when the
//! sets differ the heads keep their init. Everything that is not loaded is listed with why.

use crate::classes::ClassMatch;
use crate::model::ModelConfig;
use crate::trained::TrainedModel;
use crate::{Result, TrainError};
use serde::Serialize;
use tch::{nn, Tensor};

/// What happened to the class heads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "heads")]
pub enum HeadTransfer {
    /// Loaded as they are: the same classes in the same order.
    Loaded,
    /// Loaded with their rows reordered: the same classes in another order (`order[j]` is the
    /// source's row of this run's class `j`).
    Reordered {
        /// The source row of each class here.
        order: Vec<usize>,
    },
    /// The class sets differ but overlap: the rows of the shared classes are loaded (moved to
    /// this cache's class order), and each class only this run has starts from the mean of the
    /// loaded rows — an average class, neither favoured nor silenced — rather than from a random
    /// init, whose scores on trained features would start far from the others' and hold one
    /// class for every input.
    Partial {
        /// The source row of each class here; `None` for a class only this run has.
        rows: Vec<Option<usize>>,
        /// Classes only the source has.
        only_source: Vec<String>,
        /// Classes only this run has.
        only_here: Vec<String>,
    },
    /// Left at their init: no class is shared.
    Reinitialised {
        /// Classes only the source has.
        only_source: Vec<String>,
        /// Classes only this run has.
        only_here: Vec<String>,
    },
}

/// A tensor of the network that keeps its init, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedTensor {
    /// The variable.
    pub name: String,
    /// Why it was not loaded.
    pub reason: String,
}

/// Which tensors of a network come from a trained model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferPlan {
    /// Variables loaded from the source, sorted.
    pub loaded: Vec<String>,
    /// Variables left at their init, with why.
    pub skipped: Vec<SkippedTensor>,
    /// The class heads.
    pub heads: HeadTransfer,
    /// Source tensors nothing here took (a branch this network does not have).
    pub unused: Vec<String>,
    /// The network's class-head prefixes (whose rows a reordering moves).
    #[serde(skip)]
    head_prefixes: Vec<&'static str>,
}

impl TransferPlan {
    /// Plans the transfer into a network of shape `mc` whose variables are `target` (name,
    /// shape) and whose classes are `classes`, from a source of classes `source_classes` whose
    /// tensors are `source_shapes`.
    pub fn new(
        target: &[(String, Vec<i64>)],
        mc: &ModelConfig,
        classes: &[String],
        source_classes: &[String],
        source_shapes: &[(String, Vec<i64>)],
    ) -> TransferPlan {
        let matched = ClassMatch::between(source_classes, classes);
        let heads = if matched.identical() {
            HeadTransfer::Loaded
        } else if let Some(order) = matched.permutation() {
            HeadTransfer::Reordered { order }
        } else if !matched.shared.is_empty() {
            let mut rows = vec![None; classes.len()];
            for (i, j, _) in &matched.shared {
                if let Some(r) = rows.get_mut(*j) {
                    *r = Some(*i);
                }
            }
            HeadTransfer::Partial {
                rows,
                only_source: matched.only_first.clone(),
                only_here: matched.only_second.clone(),
            }
        } else {
            HeadTransfer::Reinitialised {
                only_source: matched.only_first.clone(),
                only_here: matched.only_second.clone(),
            }
        };
        let mut plan = TransferPlan {
            loaded: Vec::new(),
            skipped: Vec::new(),
            heads,
            unused: Vec::new(),
            head_prefixes: mc.class_head_prefixes(),
        };
        let mut target: Vec<&(String, Vec<i64>)> = target.iter().collect();
        target.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, shape) in target {
            let skip = |reason: String| SkippedTensor {
                name: name.clone(),
                reason,
            };
            if mc.is_class_head(name) {
                if let HeadTransfer::Reinitialised {
                    only_source,
                    only_here,
                } = &plan.heads
                {
                    plan.skipped.push(skip(format!(
                        "class head: no class is shared (only in the source: {}; only here: {})",
                        none_or(only_source),
                        none_or(only_here)
                    )));
                    continue;
                }
                if let HeadTransfer::Partial { rows, .. } = &plan.heads {
                    // One row per class on each side; everything after the class axis equal.
                    match source_shapes.iter().find(|(n, _)| n == name) {
                        Some((_, s))
                            if s.len() == shape.len()
                                && s[1..] == shape[1..]
                                && s.first() == Some(&(source_classes.len() as i64))
                                && shape.first() == Some(&(rows.len() as i64)) =>
                        {
                            plan.loaded.push(name.clone())
                        }
                        Some((_, s)) => plan
                            .skipped
                            .push(skip(format!("shape {s:?} in the source, {shape:?} here"))),
                        None => plan.skipped.push(skip("not in the source".into())),
                    }
                    continue;
                }
            }
            match source_shapes.iter().find(|(n, _)| n == name) {
                None => plan.skipped.push(skip("not in the source".into())),
                Some((_, s)) if s != shape => plan
                    .skipped
                    .push(skip(format!("shape {s:?} in the source, {shape:?} here"))),
                Some(_) => plan.loaded.push(name.clone()),
            }
        }
        let taken: std::collections::BTreeSet<&String> = plan.loaded.iter().collect();
        plan.unused = source_shapes
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !taken.contains(n))
            .filter(|n| {
                !mc.is_class_head(n) || !matches!(plan.heads, HeadTransfer::Reinitialised { .. })
            })
            .cloned()
            .collect();
        plan.unused.sort();
        plan
    }

    /// One line for the run's notes: how much was loaded, and what kept its init.
    pub fn summary(&self) -> String {
        let heads = match &self.heads {
            HeadTransfer::Loaded => "class heads loaded".to_string(),
            HeadTransfer::Reordered { .. } => {
                "class heads loaded with their rows reordered to this cache's class order"
                    .to_string()
            }
            HeadTransfer::Partial {
                only_source,
                only_here,
                ..
            } => format!(
                "class heads: the shared classes' rows loaded, each new class started from their \
                 mean (only in the source: {}; only here: {})",
                none_or(only_source),
                none_or(only_here)
            ),
            HeadTransfer::Reinitialised {
                only_source,
                only_here,
            } => format!(
                "class heads re-initialised, no class shared (only in the source: {}; only here: {})",
                none_or(only_source),
                none_or(only_here)
            ),
        };
        let others: Vec<&SkippedTensor> = self
            .skipped
            .iter()
            .filter(|s| !s.reason.starts_with("class head"))
            .collect();
        let mut line = format!(
            "{} tensors loaded, {} kept their init; {heads}",
            self.loaded.len(),
            self.skipped.len()
        );
        if !others.is_empty() {
            let shown: Vec<String> = others
                .iter()
                .take(4)
                .map(|s| format!("{} ({})", s.name, s.reason))
                .collect();
            line.push_str(&format!(
                "; also kept their init: {}{}",
                shown.join(", "),
                if others.len() > 4 {
                    format!(" and {} more (run.json)", others.len() - 4)
                } else {
                    String::new()
                }
            ));
        }
        if !self.unused.is_empty() {
            line.push_str(&format!("; {} source tensors unused", self.unused.len()));
        }
        line
    }

    /// Copies the planned tensors of `tensors` (the source's, [`TrainedModel::tensors`]) into
    /// `vs`, reordering head rows as planned.
    ///
    /// Errors: [`TrainError::SourceModel`] when a planned tensor is missing from `tensors`
    /// (the file changed since the plan).
    pub fn apply(
        &self,
        vs: &nn::VarStore,
        tensors: &[(String, Tensor)],
        source: &str,
    ) -> Result<()> {
        let mut vars = vs.variables();
        tch::no_grad(|| -> Result<()> {
            for name in &self.loaded {
                let src = tensors
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t)
                    .ok_or_else(|| TrainError::SourceModel {
                        source_model: source.to_string(),
                        reason: format!("{name} is no longer in its weights"),
                    })?;
                let Some(dst) = vars.get_mut(name) else {
                    continue;
                };
                let src = match &self.heads {
                    HeadTransfer::Reordered { order }
                        if self.head_prefixes.iter().any(|p| name.starts_with(p)) =>
                    {
                        let index = Tensor::from_slice(
                            &order.iter().map(|&i| i as i64).collect::<Vec<i64>>(),
                        );
                        src.index_select(0, &index)
                    }
                    HeadTransfer::Partial { rows, .. }
                        if self.head_prefixes.iter().any(|p| name.starts_with(p)) =>
                    {
                        let shared: Vec<i64> = rows.iter().flatten().map(|&i| i as i64).collect();
                        let mean = src.index_select(0, &Tensor::from_slice(&shared)).mean_dim(
                            Some([0i64].as_slice()),
                            true,
                            None::<tch::Kind>,
                        );
                        let parts: Vec<Tensor> = rows
                            .iter()
                            .map(|r| match r {
                                Some(i) => src.narrow(0, *i as i64, 1),
                                None => mean.shallow_clone(),
                            })
                            .collect();
                        Tensor::cat(&parts, 0)
                    }
                    _ => src.shallow_clone(),
                };
                dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
            }
            Ok(())
        })
    }
}

fn none_or(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A trained model resolved and checked for one run: its tensors (on the CPU) and the plan.
pub struct InitWeights {
    /// The source.
    pub source: TrainedModel,
    /// Its tensors.
    pub tensors: Vec<(String, Tensor)>,
    /// What goes where.
    pub plan: TransferPlan,
}

impl InitWeights {
    /// Opens `spec` for a run of network `mc` on planes `face_plane` / `part_planes` with crop
    /// settings `crops` and classes `classes`; refuses a source whose preprocessing differs or
    /// of which nothing fits.
    ///
    /// Errors: those of [`TrainedModel::open`]; [`TrainError::PreprocessingMismatch`] naming
    /// every difference; [`TrainError::SourceModel`] when no tensor matches.
    pub fn resolve(
        spec: &str,
        mc: &ModelConfig,
        here: &crate::trained::Preprocessing,
        classes: &[String],
    ) -> Result<InitWeights> {
        let source = TrainedModel::open(spec)?;
        let mismatches = source.preprocessing.differences(here);
        if !mismatches.is_empty() {
            return Err(TrainError::PreprocessingMismatch {
                source_model: spec.to_string(),
                target: "this run".into(),
                mismatches,
            });
        }
        let tensors = source.tensors()?;
        // The network's variables, as a fold will build them.
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _net = crate::model::Network::new(&vs.root(), mc)?;
        let target: Vec<(String, Vec<i64>)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect();
        let shapes: Vec<(String, Vec<i64>)> =
            tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
        let plan = TransferPlan::new(&target, mc, classes, &source.classes, &shapes);
        if plan.loaded.is_empty() {
            return Err(TrainError::SourceModel {
                source_model: spec.to_string(),
                reason: format!(
                    "no tensor of it fits this network ({} of its tensors, {} here; the first \
                     here: {})",
                    shapes.len(),
                    target.len(),
                    plan.skipped
                        .first()
                        .map(|s| format!("{}: {}", s.name, s.reason))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(InitWeights {
            source,
            tensors,
            plan,
        })
    }

    /// The run.json record: the source's provenance and the plan.
    pub fn record(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.source.provenance(),
            "loaded": self.plan.loaded,
            "skipped": self.plan.skipped,
            "heads": self.plan.heads,
            "unused_source_tensors": self.plan.unused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Branches, Deform, ModelKind};
    use tch::Device;

    fn cnn(classes: i64) -> ModelConfig {
        ModelConfig {
            kind: ModelKind::Cnn,
            classes,
            frames: 1,
            branches: Branches::Both,
            deform: Deform::Channel,
            width: 0.25,
            face: (16, 16),
            parts: [(8, 8); 3],
            lstm_side: 4,
            lstm_layers: 1,
            head_relu: false,
            ssm_batchnorm: false,
            head_batchnorm: false,
            head_channels: None,
        }
    }

    fn network(mc: &ModelConfig, seed: i64) -> nn::VarStore {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        crate::model::Network::new(&vs.root(), mc).unwrap();
        // tch leaves linear biases and batch norm shifts at constants: make every value
        // distinct so that a missed or misplaced copy shows.
        tch::no_grad(|| {
            for (_, mut t) in vs.variables() {
                let r = Tensor::randn(t.size(), (t.kind(), Device::Cpu));
                t.copy_(&r);
            }
        });
        vs
    }

    fn shapes(vs: &nn::VarStore) -> Vec<(String, Vec<i64>)> {
        vs.variables()
            .into_iter()
            .map(|(n, t)| (n, t.size()))
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The same classes in reverse order: every tensor loads, the head's rows reversed.
    #[test]
    fn reordered_classes_load_the_head_rows_in_this_runs_order() {
        let mc = cnn(3);
        let (src, dst) = (network(&mc, 1), network(&mc, 2));
        let tensors: Vec<(String, Tensor)> = src.variables().into_iter().collect();
        let plan = TransferPlan::new(
            &shapes(&dst),
            &mc,
            &names(&["sad", "happy", "angry"]),
            &names(&["anger", "happiness", "sadness"]),
            &shapes(&src),
        );
        assert_eq!(
            plan.heads,
            HeadTransfer::Reordered {
                order: vec![2, 1, 0]
            }
        );
        assert!(
            plan.skipped.is_empty() && plan.unused.is_empty(),
            "{plan:?}"
        );
        plan.apply(&dst, &tensors, "test").unwrap();
        let (s, d) = (src.variables(), dst.variables());
        for (name, t) in &s {
            if mc.is_class_head(name) {
                let flipped = t.flip([0]);
                assert!(d[name].equal(&flipped), "{name}");
            } else {
                assert!(d[name].equal(t), "{name}");
            }
        }
    }

    /// Overlapping classes: the shared classes' head rows load in this run's order, a new
    /// class's row is the mean of those rows, the trunk loads.
    #[test]
    fn overlapping_classes_load_the_shared_rows_and_start_new_ones_at_their_mean() {
        // Here: anger (source row 0), contempt (new), fear (source row 2), surprise (new).
        let (src_mc, mc) = (cnn(3), cnn(4));
        let (src, dst) = (network(&src_mc, 1), network(&mc, 2));
        let tensors: Vec<(String, Tensor)> = src.variables().into_iter().collect();
        let plan = TransferPlan::new(
            &shapes(&dst),
            &mc,
            &names(&["anger", "contempt", "fear", "surprise"]),
            &names(&["anger", "happy", "fear"]),
            &shapes(&src),
        );
        assert_eq!(
            plan.heads,
            HeadTransfer::Partial {
                rows: vec![Some(0), None, Some(2), None],
                only_source: names(&["happy"]),
                only_here: names(&["contempt", "surprise"]),
            }
        );
        assert!(plan.skipped.is_empty(), "{plan:?}");
        plan.apply(&dst, &tensors, "test").unwrap();
        let (s, d) = (src.variables(), dst.variables());
        for (name, t) in &s {
            if mc.is_class_head(name) {
                let got = &d[name];
                assert!(got.get(0).equal(&t.get(0)), "{name} anger");
                assert!(got.get(2).equal(&t.get(2)), "{name} fear");
                let mean = (t.get(0) + t.get(2)) / 2.0;
                for new in [1, 3] {
                    let diff = (got.get(new) - &mean).abs().max().double_value(&[]);
                    assert!(diff < 1e-6, "{name} row {new}: {diff}");
                }
            } else {
                assert!(d[name].equal(t), "{name}");
            }
        }
    }

    /// No class shared: the heads keep their init and say why; another class count, too.
    #[test]
    fn other_classes_leave_the_heads_at_their_init() {
        for (here, n) in [
            (names(&["contempt", "surprise", "neutral"]), 3),
            (names(&["a", "b"]), 2),
        ] {
            let (src_mc, mc) = (cnn(3), cnn(n));
            let (src, dst) = (network(&src_mc, 1), network(&mc, 2));
            let before: Vec<(String, Tensor)> = dst
                .variables()
                .into_iter()
                .map(|(k, t)| (k, t.copy()))
                .collect();
            let tensors: Vec<(String, Tensor)> = src.variables().into_iter().collect();
            let plan = TransferPlan::new(
                &shapes(&dst),
                &mc,
                &here,
                &names(&["anger", "happy", "fear"]),
                &shapes(&src),
            );
            assert!(
                matches!(plan.heads, HeadTransfer::Reinitialised { .. }),
                "{plan:?}"
            );
            let heads: Vec<&SkippedTensor> = plan.skipped.iter().collect();
            assert_eq!(heads.len(), 2, "{plan:?}");
            assert!(heads.iter().all(|s| mc.is_class_head(&s.name)
                && s.reason.starts_with("class head: no class is shared")));
            plan.apply(&dst, &tensors, "test").unwrap();
            let d = dst.variables();
            for (name, t) in &before {
                let want = if mc.is_class_head(name) {
                    t
                } else {
                    &src.variables()[name]
                };
                assert!(d[name].equal(want), "{name}");
            }
        }
    }

    /// A tensor of another shape keeps its init, named with both shapes.
    #[test]
    fn a_tensor_of_another_shape_is_skipped_with_both_shapes() {
        let mc = cnn(3);
        let wider = ModelConfig {
            width: 0.5,
            ..cnn(3)
        };
        let (src, dst) = (network(&wider, 1), network(&mc, 2));
        let plan = TransferPlan::new(
            &shapes(&dst),
            &mc,
            &names(&["a", "b", "c"]),
            &names(&["a", "b", "c"]),
            &shapes(&src),
        );
        let conv = plan
            .skipped
            .iter()
            .find(|s| s.name == "cnn.block0.conv0.weight")
            .unwrap();
        assert_eq!(
            conv.reason,
            "shape [16, 3, 3, 3] in the source, [8, 3, 3, 3] here"
        );
    }
}
