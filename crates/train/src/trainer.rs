//! The k-fold / split trainer: folds, the epoch loop with mixup and the two losses, honest model
//! selection, atomic checkpoints after every epoch and exact resumption.

use crate::adam::Adam;
use crate::config::{ExperimentConfig, Fusion, Precision, Protocol, Selection};
use crate::loader::{self, DeviceTransform, Layout, SampleInfo};
use crate::model::{Mgln, ModelConfig, ModelInput, ModelOutput};
use crate::report::{self, Confusion, EpochRecord, FoldResult};
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use shard::KeyedRng;
use shard::{Cache, Split};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{nn, Device, Kind, Tensor};

/// One evaluation unit: which records train, select and test.
#[derive(Debug, Clone)]
pub struct FoldPlan {
    /// Name (`fold3`, `split`).
    pub name: String,
    /// Fold number (for seeds); 0 for the split protocol.
    pub index: u64,
    /// Training records.
    pub train: Vec<u64>,
    /// Validation records (never the test set; empty when selection is `final`).
    pub validation: Vec<u64>,
    /// Test records.
    pub test: Vec<u64>,
}

/// Plans the folds of an experiment from the cache's splits.
///
/// k-fold: every fold in turn is the test set (or those listed in `folds`); with
/// `selection = "validation"` a seeded, subject-disjoint share of the training subjects is held out.
/// split: train / validation / test as stored.
///
/// Errors: no folds in the cache, an empty training or test set.
pub fn plan_folds(cfg: &ExperimentConfig, infos: &[SampleInfo]) -> Result<Vec<FoldPlan>> {
    let t = &cfg.train;
    match cfg.protocol {
        Protocol::Split => {
            let pick = |s: Split| -> Vec<u64> {
                infos
                    .iter()
                    .filter(|i| i.split == s)
                    .map(|i| i.record)
                    .collect()
            };
            let mut train = pick(Split::Train);
            let validation = match t.selection {
                Selection::Final => Vec::new(),
                Selection::Validation => {
                    let given = pick(Split::Validation);
                    if given.is_empty() {
                        // No validation split (RAF-DB, AffectNet): hold out a seeded share of the
                        // training data, by subject when the dataset names subjects.
                        let held = hold_out(infos, &train, t.seed, t.validation_share);
                        train.retain(|r| !held.contains(r));
                        held.into_iter().collect()
                    } else {
                        given
                    }
                }
            };
            let plan = FoldPlan {
                name: "split".into(),
                index: 0,
                train,
                validation,
                test: pick(Split::Test),
            };
            check_plan(&plan)?;
            Ok(vec![plan])
        }
        Protocol::Kfold => {
            let folds: BTreeSet<u16> = infos.iter().filter_map(|i| i.split.fold()).collect();
            if folds.len() < 2 {
                return Err(TrainError::EmptySplit {
                    fold: "*".into(),
                    reason:
                        "the cache has fewer than 2 folds (k-fold needs a cache built with folds; \
                             use protocol = \"split\" for FER2013)"
                            .into(),
                });
            }
            let wanted: Vec<u16> = match &cfg.folds {
                Some(f) => f.clone(),
                None => folds.iter().copied().collect(),
            };
            let mut plans = Vec::new();
            for k in wanted {
                if !folds.contains(&k) {
                    return Err(TrainError::EmptySplit {
                        fold: format!("fold{k}"),
                        reason: format!("not among the cache's folds {folds:?}"),
                    });
                }
                let test: Vec<u64> = infos
                    .iter()
                    .filter(|i| i.split == Split::Fold(k))
                    .map(|i| i.record)
                    .collect();
                let rest: Vec<&SampleInfo> = infos
                    .iter()
                    .filter(|i| i.split.fold().is_some_and(|f| f != k))
                    .collect();
                let held: BTreeSet<String> = match t.selection {
                    Selection::Final => BTreeSet::new(),
                    Selection::Validation => {
                        let mut subjects: Vec<String> = rest
                            .iter()
                            .map(|i| i.subject.clone())
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect();
                        KeyedRng::new(&[t.seed, k as u64, 0x0_7a1d]).shuffle(&mut subjects);
                        let n = ((subjects.len() as f64) * t.validation_share).ceil() as usize;
                        subjects.into_iter().take(n.max(1)).collect()
                    }
                };
                let (validation, train): (Vec<&SampleInfo>, Vec<&SampleInfo>) =
                    rest.into_iter().partition(|i| held.contains(&i.subject));
                let plan = FoldPlan {
                    name: format!("fold{k}"),
                    index: k as u64,
                    train: train.iter().map(|i| i.record).collect(),
                    validation: validation.iter().map(|i| i.record).collect(),
                    test,
                };
                check_plan(&plan)?;
                plans.push(plan);
            }
            Ok(plans)
        }
    }
}

/// A seeded `share` of `train` (records) held out for validation: whole subjects when the samples
/// name subjects, else single samples. Depends only on the seed and the cache.
fn hold_out(infos: &[SampleInfo], train: &[u64], seed: u64, share: f64) -> BTreeSet<u64> {
    let by_record: std::collections::HashMap<u64, &SampleInfo> =
        infos.iter().map(|i| (i.record, i)).collect();
    let group = |r: &u64| match by_record.get(r) {
        Some(i) if !i.subject.is_empty() => format!("s:{}", i.subject),
        _ => format!("r:{r}"),
    };
    let mut groups: Vec<String> = train
        .iter()
        .map(group)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    KeyedRng::new(&[seed, 0x5917_7a1d]).shuffle(&mut groups);
    let n = ((groups.len() as f64) * share).ceil() as usize;
    let held: BTreeSet<String> = groups.into_iter().take(n.max(1)).collect();
    train
        .iter()
        .copied()
        .filter(|r| held.contains(&group(r)))
        .collect()
}

fn check_plan(p: &FoldPlan) -> Result<()> {
    if p.train.is_empty() || p.test.is_empty() {
        return Err(TrainError::EmptySplit {
            fold: p.name.clone(),
            reason: format!(
                "{} training and {} test samples",
                p.train.len(),
                p.test.len()
            ),
        });
    }
    Ok(())
}

/// Picks the device named in the configuration, after checking that libtorch can use it.
///
/// Errors: [`TrainError::Config`] for a name that is not `auto`, `cpu`, `cuda` or `cuda:N`, and
/// for a CUDA device libtorch does not see (with what it does see), instead of a libtorch panic
/// at the first tensor.
pub fn pick_device(name: &str) -> Result<Device> {
    let cuda = |n: usize| -> Result<Device> {
        let count = tch::Cuda::device_count();
        if !tch::Cuda::is_available() || count <= n as i64 {
            return Err(TrainError::Config(format!(
                "device {name:?}: libtorch sees {} (CUDA available: {}, cuDNN: {}); run \
                 `train env` for details, or use --device cpu (or auto, which falls back to the CPU)",
                match count {
                    0 => "no CUDA device".to_string(),
                    1 => "1 CUDA device (cuda:0)".to_string(),
                    c => format!("{c} CUDA devices (cuda:0 … cuda:{})", c - 1),
                },
                tch::Cuda::is_available(),
                tch::Cuda::cudnn_is_available()
            )));
        }
        Ok(Device::Cuda(n))
    };
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda(n),
            None => Err(TrainError::Config(format!(
                "device {s:?}: expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Progress hooks of the trainer (the binary draws bars).
pub trait TrainProgress {
    /// A fold's epoch starts with `batches` batches.
    fn epoch_start(&self, fold: &str, epoch: usize, epochs: usize, batches: u64);
    /// A batch is done.
    fn batch_done(&self, samples: u64);
    /// The epoch ended with this record.
    fn epoch_end(&self, record: &EpochRecord);
    /// Free-form notes (pretrained weights missing, resumption, …).
    fn note(&self, text: &str);
}

/// Progress that prints nothing.
pub struct Quiet;

impl TrainProgress for Quiet {
    fn epoch_start(&self, _: &str, _: usize, _: usize, _: u64) {}
    fn batch_done(&self, _: u64) {}
    fn epoch_end(&self, _: &EpochRecord) {}
    fn note(&self, _: &str) {}
}

/// A fold's checkpoint bookkeeping (`fold-<k>/checkpoint.json`), next to the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointInfo {
    /// Last completed epoch (0-based).
    epoch: usize,
    /// blake3 of the tensor file it belongs to.
    tensors_blake3: String,
    /// Every epoch's record so far.
    history: Vec<EpochRecord>,
}

/// Everything one run needs.
pub struct Runner<'a> {
    /// The experiment.
    pub cfg: &'a ExperimentConfig,
    /// The run directory.
    pub dir: PathBuf,
    /// The cache.
    pub cache: Arc<Cache>,
    /// Planes and frames.
    pub layout: Layout,
    /// Class names.
    pub classes: Vec<String>,
    /// Device.
    pub device: Device,
    /// Progress hooks.
    pub progress: &'a dyn TrainProgress,
    /// Targets other than the record's label (FER+ caches built under a soft FERPlus mode);
    /// `None` trains against the labels.
    pub targets: Option<Arc<VoteTargets>>,
}

/// How a FER+ cache's stored votes become training targets, by the FERPlus mode the cache was
/// built under (`key_ingredients.config.ferplus_mode`):
/// `probability`: a label drawn from the kept-vote distribution for every sample in every epoch
/// (keyed by seed, fold, epoch and record, so resume repeats it); `crossentropy`: cross-entropy
/// against the distribution; `multi_target`: FERPlus's −log max_k(t_k·p_k) with
/// t = (1−ε)·[kept > 0] + ε, ε = 0.001 (any kept emotion counts as right). The record's label
/// (the distribution's first maximum) is what accuracies are measured against.
#[derive(Debug, Clone)]
pub struct VoteTargets {
    /// The mode.
    pub mode: shard::votes::FerPlusMode,
    /// Per record (global index), the mode's distribution over the classes.
    pub distribution: std::collections::HashMap<u64, Vec<f32>>,
}

impl VoteTargets {
    /// The targets of a cache, or `None` when it trains on labels (not FER+, or a mode with one
    /// label per sample: majority, plurality).
    ///
    /// Errors: a soft mode whose records carry no votes (built before format 1.1: rebuild), a
    /// class count other than FER+'s 8, votes that the mode would have excluded.
    pub fn for_cache(cache: &Cache, infos: &[loader::SampleInfo]) -> Result<Option<VoteTargets>> {
        let m = cache.manifest();
        let Some(name) = m
            .key_ingredients
            .pointer("/config/ferplus_mode")
            .and_then(|v| v.as_str())
        else {
            return Ok(None);
        };
        let mode: shard::votes::FerPlusMode = name.parse().map_err(TrainError::Config)?;
        if !mode.soft_targets() {
            return Ok(None);
        }
        let bad = |record: u64, reason: String| TrainError::Record {
            cache: cache.dir().to_path_buf(),
            record,
            reason,
        };
        if m.class_names.len() != 8 {
            return Err(TrainError::Config(format!(
                "cache {}: FER+ mode {name} needs FER+'s 8 classes, the cache has {}",
                cache.dir().display(),
                m.class_names.len()
            )));
        }
        let mut distribution = std::collections::HashMap::with_capacity(infos.len());
        for i in infos {
            let votes = shard::votes::vote_array(&i.votes).map_err(|e| {
                bad(
                    i.record,
                    format!(
                        "{e}: the cache was built under FER+ mode {name}, which trains on the                          votes, before records stored them (format 1.0); rebuild it with this prep"
                    ),
                )
            })?;
            let t = shard::votes::ferplus_target(&votes, mode)
                .map_err(|why| bad(i.record, format!("votes excluded by {name}: {why}")))?;
            distribution.insert(i.record, t.distribution.iter().map(|&d| d as f32).collect());
        }
        Ok(Some(VoteTargets { mode, distribution }))
    }

    /// The batch's targets: hard labels drawn from the distributions (`probability`, keyed by
    /// `keys` and the record) or a soft target tensor [n, C] on `device`.
    pub fn batch(&self, records: &[u64], keys: [u64; 3], device: Device) -> Result<BatchTarget> {
        use shard::votes::FerPlusMode;
        let dist = |r: &u64| {
            self.distribution
                .get(r)
                .ok_or_else(|| TrainError::Config(format!("record {r} has no vote distribution")))
        };
        match self.mode {
            FerPlusMode::Probability => {
                let mut labels = Vec::with_capacity(records.len());
                for r in records {
                    let d = dist(r)?;
                    let mut rng = KeyedRng::new(&[keys[0], keys[1], keys[2], *r, 0x9b_0b]);
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    let mut acc = 0.0f64;
                    let mut pick = d.iter().rposition(|&x| x > 0.0).unwrap_or(0);
                    for (k, &p) in d.iter().enumerate() {
                        acc += p as f64;
                        if u < acc && p > 0.0 {
                            pick = k;
                            break;
                        }
                    }
                    labels.push(pick as i64);
                }
                Ok(BatchTarget::Labels(loader::upload(
                    Tensor::from_slice(&labels),
                    device,
                )))
            }
            FerPlusMode::Crossentropy | FerPlusMode::MultiTarget => {
                let c = self.distribution.values().next().map_or(0, Vec::len);
                let mut t = Vec::with_capacity(records.len() * c);
                for r in records {
                    let d = dist(r)?;
                    if self.mode == FerPlusMode::MultiTarget {
                        const EPS: f32 = 0.001;
                        t.extend(
                            d.iter()
                                .map(|&x| (1.0 - EPS) * if x > 0.0 { 1.0 } else { 0.0 } + EPS),
                        );
                    } else {
                        t.extend_from_slice(d);
                    }
                }
                let target = loader::upload(Tensor::from_slice(&t), device)
                    .view([records.len() as i64, c as i64]);
                Ok(BatchTarget::Soft(SoftTarget {
                    loss: if self.mode == FerPlusMode::MultiTarget {
                        SoftLoss::MaxProduct
                    } else {
                        SoftLoss::CrossEntropy
                    },
                    target,
                }))
            }
            _ => Err(TrainError::Config(format!(
                "FER+ mode {} trains on labels",
                self.mode.name()
            ))),
        }
    }
}

/// What one batch trains against beyond its labels.
pub enum BatchTarget {
    /// Labels that replace the records' (drawn for `probability`).
    Labels(Tensor),
    /// A target distribution per sample.
    Soft(SoftTarget),
}

/// The loss against a per-sample target distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftLoss {
    /// −Σ_k t_k · log softmax(s)_k (FERPlus's `crossentropy`).
    CrossEntropy,
    /// −log max_k (t_k · softmax(s)_k) (FERPlus's `multi_target`).
    MaxProduct,
}

/// Target distributions [b, C] (f32, on the scores' device) and the loss they train with.
pub struct SoftTarget {
    /// Which loss.
    pub loss: SoftLoss,
    /// [b, C].
    pub target: Tensor,
}

impl SoftTarget {
    /// The batch-mean loss of `scores` [b, C] against the targets, the targets reordered by
    /// `perm` when given (mixup's partners).
    pub fn loss_of(&self, scores: &Tensor, perm: Option<&Tensor>) -> Tensor {
        let t = match perm {
            Some(p) => self.target.index_select(0, p),
            None => self.target.shallow_clone(),
        };
        let s = scores.to_kind(Kind::Float);
        let per_sample = match self.loss {
            SoftLoss::CrossEntropy => -(t * s.log_softmax(-1, Kind::Float)).sum_dim_intlist(
                Some(&[-1i64][..]),
                false,
                Kind::Float,
            ),
            SoftLoss::MaxProduct => -(t * s.softmax(-1, Kind::Float))
                .amax(&[-1i64][..], false)
                .log(),
        };
        per_sample.mean(Kind::Float)
    }
}

impl Runner<'_> {
    /// The network shape for this run's cache and configuration.
    pub fn model_config(&self) -> ModelConfig {
        let m = &self.cfg.model;
        let face = m
            .face_size
            .unwrap_or((self.layout.face.0 as i64, self.layout.face.1 as i64));
        let s = m.part_scale;
        let part = |i: usize| {
            let (h, w) = self.layout.parts[i];
            (
                ((h as f64 * s).round() as i64).max(8),
                ((w as f64 * s).round() as i64).max(8),
            )
        };
        ModelConfig {
            classes: self.classes.len() as i64,
            frames: self.layout.frames() as i64,
            branches: m.branches,
            deform: m.deform,
            width: m.width,
            face,
            parts: [part(0), part(1), part(2)],
            lstm_side: m.lstm_side,
            lstm_layers: m.lstm_layers,
            head_relu: m.head_relu,
            ssm_batchnorm: m.ssm_batchnorm,
        }
    }

    /// How host batches become inputs of a network of shape `mc`.
    pub fn transform(&self, mc: &ModelConfig) -> DeviceTransform {
        DeviceTransform {
            device: self.device,
            face_size: mc.face,
            part_sizes: mc.parts,
            channels_last: self.cfg.train.channels_last,
        }
    }

    /// Trains and evaluates one fold, resuming from its checkpoint when there is one.
    pub fn run_fold(&self, plan: &FoldPlan) -> Result<FoldResult> {
        let t = &self.cfg.train;
        let fold_dir = self.dir.join(format!("fold-{}", plan.name));
        std::fs::create_dir_all(&fold_dir).map_err(|e| TrainError::io(&fold_dir, e))?;
        let result_path = fold_dir.join("result.json");
        if let Ok(bytes) = std::fs::read(&result_path) {
            if let Ok(r) = serde_json::from_slice::<FoldResult>(&bytes) {
                self.progress
                    .note(&format!("{}: already complete, kept", plan.name));
                return Ok(r);
            }
        }
        let mc = self.model_config();
        tch::manual_seed((t.seed ^ (plan.index.wrapping_mul(0x9e37_79b9))) as i64);
        let mut vs = nn::VarStore::new(self.device);
        let model = Mgln::new(&vs.root(), &mc)?;
        crate::model::initialise(
            &vs,
            &mc,
            self.cfg.model.init,
            t.seed ^ plan.index.wrapping_mul(0x9e37_79b9),
        );
        match &self.cfg.model.pretrained {
            Some(p) => {
                let n = crate::model::load_vgg16(&mut vs, p)?;
                self.progress
                    .note(&format!("SSM: {n} tensors from {}", p.display()));
            }
            None => self.progress.note(&format!(
                "SSM: no pretrained VGG16 weights (model.pretrained): random init ({:?})",
                self.cfg.model.init
            )),
        }
        if t.channels_last && self.device.is_cuda() {
            crate::model::to_channels_last(&vs);
        }
        let mut opt = Adam::new(&vs, t.lr, t.weight_decay).with_fused(t.fused_adam);
        let ckpt_tensors = fold_dir.join("checkpoint.safetensors");
        let ckpt_info = fold_dir.join("checkpoint.json");
        let mut history: Vec<EpochRecord> = Vec::new();
        let mut start_epoch = 0;
        if let Ok(bytes) = std::fs::read(&ckpt_info) {
            let info: CheckpointInfo =
                serde_json::from_slice(&bytes).map_err(|e| TrainError::Checkpoint {
                    path: ckpt_info.clone(),
                    reason: e.to_string(),
                })?;
            let hash = shard::hash_file(&ckpt_tensors)?;
            if hash != info.tensors_blake3 {
                return Err(TrainError::Checkpoint {
                    path: ckpt_tensors,
                    reason: "tensor file does not match checkpoint.json (damaged?)".into(),
                });
            }
            let named = load_model_vars(&vs, &ckpt_tensors)?;
            opt.load_state(&named, &ckpt_tensors)?;
            start_epoch = info.epoch + 1;
            history = info.history;
            self.progress.note(&format!(
                "{}: resumed after epoch {} from {}",
                plan.name,
                info.epoch + 1,
                ckpt_info.display()
            ));
        }
        let tf = self.transform(&mc);
        for epoch in start_epoch..t.epochs {
            opt.lr = if epoch >= t.lr_step_epoch {
                t.lr * t.lr_gamma
            } else {
                t.lr
            };
            let rec = self.train_epoch(&model, &mut opt, &tf, plan, epoch)?;
            let mut rec = rec;
            let last = epoch + 1 == t.epochs;
            if last || (epoch + 1) % t.eval_every == 0 {
                let (acc, conf) = self.evaluate(&model, &tf, &plan.test)?;
                rec.test_accuracy = Some(acc);
                if !plan.validation.is_empty() {
                    rec.validation_accuracy = Some(self.evaluate(&model, &tf, &plan.validation)?.0);
                }
                rec.confusion = Some(conf.counts.clone());
            }
            history.push(rec.clone());
            self.save_checkpoint(&vs, &opt, &ckpt_tensors, &ckpt_info, epoch, &history)?;
            self.progress.epoch_end(&rec);
            report::write_metrics(&self.dir)?;
            crate::tensorboard::write_fold_events(&fold_dir, self.started_unix(), &history)?;
        }
        let result = report::fold_result(&plan.name, &history, self.cfg.train.selection);
        self.write_fold_outputs(&fold_dir, &result, &history)?;
        shard::atomic_write(
            &result_path,
            &serde_json::to_vec_pretty(&result)
                .map_err(|e| TrainError::serialize(result_path.display().to_string(), e))?,
        )?;
        Ok(result)
    }

    /// The reported epoch's `confusion.csv` and the fold's figures (`confusion.{png,svg}`,
    /// `curves.{png,svg}`). A figure that cannot be drawn (no font on this host) is reported as a
    /// warning, not a failed fold: the numbers are all in the CSV and JSON files.
    fn write_fold_outputs(
        &self,
        fold_dir: &Path,
        result: &FoldResult,
        history: &[EpochRecord],
    ) -> Result<()> {
        let conf = Confusion {
            counts: result.confusion.clone(),
        };
        let title = format!(
            "{} · {}, epoch {} ({}) · test accuracy {:.1} %",
            self.cfg.name,
            result.fold,
            result.epoch,
            result.selection,
            100.0 * result.accuracy
        );
        if !conf.counts.is_empty() {
            conf.write_csv(&fold_dir.join("confusion.csv"), &self.classes)?;
        }
        let figures = (|| {
            if !conf.counts.is_empty() {
                crate::figures::write_confusion(fold_dir, &conf, &self.classes, &title)?;
            }
            crate::figures::write_curves(
                fold_dir,
                history,
                result.epoch,
                &format!("{} · {} · training curves", self.cfg.name, result.fold),
            )
        })();
        if let Err(e) = figures {
            self.progress.note(&format!(
                "WARNING: {}: figures not written: {e}",
                fold_dir.display()
            ));
        }
        Ok(())
    }

    /// When the run started (`run.json`), the TensorBoard events' time origin.
    fn started_unix(&self) -> f64 {
        std::fs::read(self.dir.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["started_unix"].as_f64())
            .unwrap_or_else(|| unix_now() as f64)
    }

    fn save_checkpoint(
        &self,
        vs: &nn::VarStore,
        opt: &Adam,
        tensors: &Path,
        info: &Path,
        epoch: usize,
        history: &[EpochRecord],
    ) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t.detach().to_device(Device::Cpu)))
            .collect();
        named.extend(
            opt.state()
                .into_iter()
                .map(|(n, t)| (n, t.to_device(Device::Cpu))),
        );
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tmp = tensors.with_extension("safetensors.tmp");
        Tensor::write_safetensors(&named, &tmp)?;
        let f = std::fs::File::open(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
        std::fs::rename(&tmp, tensors).map_err(|e| TrainError::io(tensors, e))?;
        // The rename is durable only once the directory is synced (as `shard::atomic_write`
        // does): otherwise a crash can leave checkpoint.json naming tensors that are not there.
        if let Some(dir) = tensors.parent() {
            shard::fsync_dir(dir)?;
        }
        let ci = CheckpointInfo {
            epoch,
            tensors_blake3: shard::hash_file(tensors)?,
            history: history.to_vec(),
        };
        shard::atomic_write(
            info,
            &serde_json::to_vec_pretty(&ci)
                .map_err(|e| TrainError::serialize(info.display().to_string(), e))?,
        )?;
        Ok(())
    }

    fn train_epoch(
        &self,
        model: &Mgln,
        opt: &mut Adam,
        tf: &DeviceTransform,
        plan: &FoldPlan,
        epoch: usize,
    ) -> Result<EpochRecord> {
        let train_cfg = &self.cfg.train;
        let order = loader::epoch_order(&plan.train, train_cfg.seed, plan.index, epoch as u64);
        let batches = order.len().div_ceil(train_cfg.batch) as u64;
        self.progress
            .epoch_start(&plan.name, epoch, train_cfg.epochs, batches);
        let rx = loader::stream(
            self.cache.clone(),
            self.layout.clone(),
            order,
            train_cfg.batch,
            0,
            train_cfg.prefetch,
            train_cfg.skip_bad_records,
        );
        let start = std::time::Instant::now();
        // Sums stay on the device and are read once, after the epoch: reading a value inside the
        // loop would make the host wait for the device at every step.
        let sum = || Tensor::zeros([], (Kind::Double, self.device));
        let (sum_loss, sum_loss_global, sum_loss_local) = (sum(), sum(), sum());
        let correct = Tensor::zeros([], (Kind::Int64, self.device));
        let mut seen = 0i64;
        let mut skipped = 0usize;
        let fusion_weight = self.cfg.model.fusion_weight;
        let amp = train_cfg.precision == Precision::Bf16 && self.device.is_cuda();
        for (step, batch) in rx.into_iter().enumerate() {
            let batch = batch?;
            skipped += batch.skipped.len();
            if batch.n == 0 {
                continue;
            }
            let mut rng = KeyedRng::new(&[
                train_cfg.seed,
                plan.index,
                epoch as u64,
                step as u64,
                0x0_a6,
            ]);
            let aug = loader::draw_augments(
                &mut rng,
                batch.n,
                train_cfg.shift,
                train_cfg.scale,
                train_cfg.flip,
            );
            let (input, labels) = tf.apply(&batch, &self.layout, Some(&aug));
            let target = match &self.targets {
                Some(t) => Some(t.batch(
                    &batch.records,
                    [train_cfg.seed, plan.index, epoch as u64],
                    self.device,
                )?),
                None => None,
            };
            let (loss_labels, soft) = match &target {
                Some(BatchTarget::Labels(l)) => (l.shallow_clone(), None),
                Some(BatchTarget::Soft(s)) => (labels.shallow_clone(), Some(s)),
                None => (labels.shallow_clone(), None),
            };
            // Mixup on the peak face only (the parts stay unmixed), as the authors do.
            let (lambda, perm) = if train_cfg.mixup_alpha > 0.0 && batch.n > 1 {
                let l = rng.beta_symmetric(train_cfg.mixup_alpha);
                let mut p: Vec<i64> = (0..batch.n as i64).collect();
                rng.shuffle(&mut p);
                (l, Some(loader::upload(Tensor::from_slice(&p), self.device)))
            } else {
                (1.0, None)
            };
            let mix = perm.map(|perm| Mixup { lambda, perm });
            let StepLoss {
                total: loss,
                global: loss_global,
                local: loss_local,
                output: out,
            } = mgln_loss(model, input, &loss_labels, soft, mix.as_ref(), amp)?;
            opt.zero_grad();
            loss.backward();
            opt.step()?;
            let n = batch.n as f64;
            let add = |acc: &Tensor, l: &Tensor| {
                let _ = acc
                    .shallow_clone()
                    .g_add_(&(l.detach().to_kind(Kind::Double) * n));
            };
            add(&sum_loss, &loss);
            if let Some(l) = &loss_global {
                add(&sum_loss_global, l);
            }
            if let Some(l) = &loss_local {
                add(&sum_loss_local, l);
            }
            let pred = fuse(
                &out.global,
                &out.local,
                self.cfg.model.fusion,
                fusion_weight,
            )
            .argmax(1, false);
            // Against the dominant mixup label.
            let target = match (&mix, lambda < 0.5) {
                (Some(m), true) => labels.index_select(0, &m.perm),
                _ => labels,
            };
            let _ = correct
                .shallow_clone()
                .g_add_(&pred.eq_tensor(&target).sum(Kind::Int64));
            seen += batch.n as i64;
            self.progress.batch_done(batch.n as u64);
            if stop_requested() {
                return Err(TrainError::Stopped {
                    run: self.dir.clone(),
                    fold: plan.name.clone(),
                    epoch: epoch + 1,
                });
            }
        }
        if self.device.is_cuda() {
            tch::Cuda::synchronize(match self.device {
                Device::Cuda(i) => i as i64,
                _ => 0,
            });
        }
        let (sum_loss, sum_loss_global, sum_loss_local, correct) = (
            sum_loss.double_value(&[]),
            sum_loss_global.double_value(&[]),
            sum_loss_local.double_value(&[]),
            correct.int64_value(&[]),
        );
        let secs = start.elapsed().as_secs_f64();
        let seen_f = (seen.max(1)) as f64;
        Ok(EpochRecord {
            fold: plan.name.clone(),
            epoch: epoch + 1,
            lr: opt.lr,
            loss: sum_loss / seen_f,
            loss_global: sum_loss_global / seen_f,
            loss_local: sum_loss_local / seen_f,
            train_accuracy: correct as f64 / seen_f,
            test_accuracy: None,
            validation_accuracy: None,
            samples_per_s: seen as f64 / secs.max(1e-9),
            seconds: secs,
            skipped_records: skipped,
            confusion: None,
        })
    }

    /// Accuracy and confusion matrix of the fused prediction on `records` (no augmentation).
    pub fn evaluate(
        &self,
        model: &Mgln,
        tf: &DeviceTransform,
        records: &[u64],
    ) -> Result<(f64, Confusion)> {
        let mut conf = Confusion::new(self.classes.len());
        for s in self.score(model, tf, records)? {
            conf.add(s.label as usize, s.predicted as usize);
        }
        Ok((conf.accuracy(), conf))
    }

    /// The fused class probabilities ([`fuse`]) of every readable record of `records`, in
    /// order, in eval mode and without augmentation.
    ///
    /// Errors: cache and libtorch errors (damaged records are skipped only with
    /// `skip_bad_records`).
    pub fn score(
        &self,
        model: &Mgln,
        tf: &DeviceTransform,
        records: &[u64],
    ) -> Result<Vec<ScoredSample>> {
        let t = &self.cfg.train;
        let mut scored = Vec::with_capacity(records.len());
        let rx = loader::stream(
            self.cache.clone(),
            self.layout.clone(),
            records.to_vec(),
            t.batch,
            0,
            t.prefetch,
            t.skip_bad_records,
        );
        let amp = t.precision == Precision::Bf16 && self.device.is_cuda();
        tch::no_grad(|| -> Result<()> {
            for batch in rx {
                let batch = batch?;
                if batch.n == 0 {
                    continue;
                }
                let (input, _) = tf.apply(&batch, &self.layout, None);
                let out = crate::torch_ext::autocast_bf16(self.device, amp, || {
                    model.forward(&input, false)
                })?;
                let probs = fuse(
                    &out.global,
                    &out.local,
                    self.cfg.model.fusion,
                    self.cfg.model.fusion_weight,
                )
                .to_device(Device::Cpu);
                let pred: Vec<i64> = Vec::try_from(&probs.argmax(1, false))?;
                let c = probs.size().get(1).copied().unwrap_or(0);
                let flat: Vec<f32> = Vec::try_from(&probs.reshape([-1]))?;
                for (k, ((record, label), predicted)) in batch
                    .records
                    .iter()
                    .zip(&batch.labels)
                    .zip(pred)
                    .enumerate()
                {
                    let row = (k as i64 * c) as usize..((k as i64 + 1) * c) as usize;
                    scored.push(ScoredSample {
                        record: *record,
                        label: *label,
                        predicted,
                        probabilities: flat[row].to_vec(),
                    });
                }
            }
            Ok(())
        })?;
        Ok(scored)
    }
}

/// One evaluated sample: its record, label, the fused prediction and its class probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSample {
    /// Global record number in the cache.
    pub record: u64,
    /// The record's label.
    pub label: i64,
    /// The arg-max of `probabilities` (the first on ties, as libtorch's argmax).
    pub predicted: i64,
    /// The fused class probabilities (sum 1).
    pub probabilities: Vec<f32>,
}

/// Mixup of one batch (Zhang et al. 2018), as the authors apply it: the peak face becomes
/// λ·face + (1−λ)·face[perm]; the part crops stay unmixed.
pub struct Mixup {
    /// Weight λ of the batch's own faces.
    pub lambda: f64,
    /// Partner of each sample, [b] int64 on the model's device.
    pub perm: Tensor,
}

/// The losses of one training step and the scores they came from.
pub struct StepLoss {
    /// What is minimised: `global + local` (equal weights, as the authors), or the one branch.
    pub total: Tensor,
    /// GFM loss: cross-entropy, mixed as the face was (λ·CE(g, y) + (1−λ)·CE(g, y[perm])).
    pub global: Option<Tensor>,
    /// PBM loss: cross-entropy against the batch's own labels (its inputs are never mixed).
    pub local: Option<Tensor>,
    /// The scores.
    pub output: ModelOutput,
}

/// Forward pass in training mode and the MGLN loss of one batch: the one definition the epoch
/// loop runs and the PyTorch oracle test (`tests/train/oracle.rs`) pins. `amp` runs the forward
/// pass under bf16 autocast for the input's device type (CPU or CUDA; the trainer asks for it on
/// CUDA only); the losses are computed in fp32 either way.
///
/// Errors: a model with neither branch.
pub fn mgln_loss(
    model: &Mgln,
    input: ModelInput,
    labels: &Tensor,
    soft: Option<&SoftTarget>,
    mix: Option<&Mixup>,
    amp: bool,
) -> Result<StepLoss> {
    let input = match mix {
        Some(m) => ModelInput {
            face: &input.face * m.lambda + input.face.index_select(0, &m.perm) * (1.0 - m.lambda),
            parts: input.parts,
        },
        None => input,
    };
    let output =
        crate::torch_ext::autocast_bf16(input.face.device(), amp, || model.forward(&input, true))?;
    // The loss of scores against the batch's targets (the labels, or the soft targets when
    // given), the targets taken in mixup-partner order with `perm`.
    let ce = |s: &Tensor, perm: Option<&Tensor>| match soft {
        Some(t) => t.loss_of(s, perm),
        None => {
            let y = match perm {
                Some(p) => labels.index_select(0, p),
                None => labels.shallow_clone(),
            };
            s.to_kind(Kind::Float).cross_entropy_for_logits(&y)
        }
    };
    let global = output.global.as_ref().map(|g| match mix {
        Some(m) => ce(g, None) * m.lambda + ce(g, Some(&m.perm)) * (1.0 - m.lambda),
        None => ce(g, None),
    });
    let local = output.local.as_ref().map(|p| ce(p, None));
    let total = match (&global, &local) {
        (Some(a), Some(b)) => a + b,
        (Some(a), None) => a.shallow_clone(),
        (None, Some(b)) => b.shallow_clone(),
        (None, None) => return Err(TrainError::Config("no branch".into())),
    };
    Ok(StepLoss {
        total,
        global,
        local,
        output,
    })
}

/// Class probabilities of the fused prediction, [b, C]: for [`Fusion::Sum`]
/// softmax(w·GFM + (1−w)·PBM), whose arg-max is the authors' arg-max of the raw score sum; for
/// [`Fusion::SoftmaxAverage`] w·softmax(GFM) + (1−w)·softmax(PBM). One branch alone: its softmax.
pub fn fuse(g: &Option<Tensor>, p: &Option<Tensor>, fusion: Fusion, w: f64) -> Tensor {
    let sm = |x: &Tensor| x.softmax(-1, Kind::Float);
    let f = |x: &Tensor| x.to_kind(Kind::Float);
    match (g, p) {
        (Some(g), Some(p)) => match fusion {
            Fusion::Sum => sm(&(f(g) * w + f(p) * (1.0 - w))),
            Fusion::SoftmaxAverage => sm(&f(g)) * w + sm(&f(p)) * (1.0 - w),
        },
        (Some(g), None) => sm(&f(g)),
        (None, Some(p)) => sm(&f(p)),
        (None, None) => Tensor::zeros([0, 0], (Kind::Float, Device::Cpu)),
    }
}

/// Copies the `model.*` tensors of a checkpoint file into `vs`; returns every tensor of the file
/// (the optimizer state is in it too).
///
/// Errors: unreadable file, a variable of the model missing from it.
pub fn load_model_vars(vs: &nn::VarStore, file: &Path) -> Result<Vec<(String, Tensor)>> {
    let named = Tensor::read_safetensors(file)?;
    let mut vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vars.iter_mut() {
            let key = format!("model.{name}");
            let src = named
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, t)| t)
                .ok_or_else(|| TrainError::Checkpoint {
                    path: file.to_path_buf(),
                    reason: format!("no {key}"),
                })?;
            var.copy_(&src.to_device(var.device()));
        }
        Ok(())
    })?;
    Ok(named)
}

/// What `train run` produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// Per-fold results.
    pub folds: Vec<FoldResult>,
}

/// Options of [`run_experiment`].
pub struct RunOptions<'a> {
    /// Continue this run directory instead of starting a new one.
    pub resume: Option<PathBuf>,
    /// Run name (default: UTC time stamp).
    pub run_name: Option<String>,
    /// Git revision for run.json.
    pub git_revision: Option<String>,
    /// Progress hooks.
    pub progress: &'a dyn TrainProgress,
    /// Stop after this many epochs of this invocation (tests of resumption; default none).
    pub stop_after_epochs: Option<usize>,
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks a running experiment to stop after its current training step (what the binary's SIGINT
/// and SIGTERM handler calls; an atomic store, safe in a signal handler). The run then ends with
/// [`TrainError::Stopped`]; the checkpoint of the last finished epoch is on disk, and `train run
/// --resume` repeats the interrupted epoch from its start with the same results.
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `config_file` exists with exactly `config_text` (the run can be continued); an error
/// when it exists with another configuration.
fn same_config_exists(config_file: &Path, config_text: &str, dir: &Path) -> Result<bool> {
    if !config_file.exists() {
        return Ok(false);
    }
    let old = std::fs::read_to_string(config_file).map_err(|e| TrainError::io(config_file, e))?;
    if old != config_text {
        return Err(TrainError::Config(format!(
            "run directory {} exists with another configuration; choose another --run-name, \
             or continue it with `train run --resume {}`. Differences (- there, + now):{}",
            dir.display(),
            dir.display(),
            config_difference(&old, config_text)
        )));
    }
    Ok(true)
}

/// Lines of `a` missing from `b` and of `b` missing from `a`, for "the configs differ" errors.
fn config_difference(old: &str, new: &str) -> String {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut out = String::new();
    for l in old.lines().filter(|l| !new_lines.contains(l)) {
        out.push_str(&format!("\n  - {l}"));
    }
    for l in new.lines().filter(|l| !old_lines.contains(l)) {
        out.push_str(&format!("\n  + {l}"));
    }
    out
}

/// Runs (or resumes) an experiment: every planned fold, then `summary.md`.
///
/// Everything that can be checked is checked before the run directory is created (the
/// configuration's ranges, the device, the cache reference, the folds and their subject
/// disjointness), so a run that cannot start leaves nothing behind. A run name that exists is
/// resumed when its resolved configuration is the same, and refused when it differs.
///
/// Errors: configuration, cache and libtorch errors; a damaged checkpoint; an existing run
/// directory with another configuration; [`TrainError::Stopped`] after [`request_stop`].
pub fn run_experiment(cfg: &ExperimentConfig, opts: RunOptions<'_>) -> Result<RunOutcome> {
    let t = &cfg.train;
    cfg.check().map_err(TrainError::Config)?;
    if let Some(n) = t.threads {
        tch::set_num_threads(n);
    }
    let device = pick_device(&t.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    crate::torch_ext::set_tf32(t.precision.allows_tf32())?;
    let cache_dir = cfg.resolve_cache()?;
    // Read under the cache's shared lock for the whole run: `prep cache gc` leaves it alone.
    let cache = Arc::new(Cache::open_shared(&cache_dir, &mut |holder| {
        opts.progress.note(&format!(
            "cache {} is being written by {}; waiting",
            cache_dir.display(),
            shard::lock::describe_holder(holder)
        ))
    })?);
    let layout = Layout::from_cache(&cache, t.frames)?;
    let classes = cache.manifest().class_names.clone();
    let infos = loader::sample_infos(&cache)?;
    let targets = VoteTargets::for_cache(&cache, &infos)?.map(Arc::new);
    if let Some(t) = &targets {
        opts.progress.note(&format!(
            "targets: the cache's FER+ votes under FERPlus's {} mode ({})",
            t.mode.name(),
            match t.mode {
                shard::votes::FerPlusMode::Probability =>
                    "a label drawn from the votes every epoch",
                shard::votes::FerPlusMode::MultiTarget => "any kept emotion counts as right",
                _ => "cross-entropy against the vote distribution",
            }
        ));
    }
    let plans = plan_folds(cfg, &infos)?;
    // Subject-disjointness of every plan is checked, not assumed.
    let subject_of: BTreeMap<u64, &str> = infos
        .iter()
        .map(|i| (i.record, i.subject.as_str()))
        .collect();
    for p in &plans {
        if cfg.protocol == Protocol::Kfold {
            let test: BTreeSet<&str> = p.test.iter().map(|r| subject_of[r]).collect();
            if let Some(s) = p
                .train
                .iter()
                .chain(&p.validation)
                .map(|r| subject_of[r])
                .find(|s| !s.is_empty() && test.contains(s))
            {
                return Err(TrainError::EmptySplit {
                    fold: p.name.clone(),
                    reason: format!("subject {s} is in both training and test data"),
                });
            }
        }
    }
    let m = cache.manifest();
    opts.progress.note(&format!(
        "cache {} (name {}, key {}, {} samples)",
        cache_dir.display(),
        m.name,
        m.short_key(),
        m.samples
    ));
    if m.extra.pointer("/notes/folds_by").and_then(|v| v.as_str()) == Some("image")
        && cfg.protocol == Protocol::Kfold
    {
        opts.progress.note(
            "WARNING: this cache's folds are image-level (no subject ids were given when it was \
             built): one person can be in training and test folds, so these are not \
             subject-independent numbers. Rebuild with --subject-regex or --subjects.",
        );
    }
    let mut resume = opts.resume.clone();
    let dir = match &opts.resume {
        Some(d) => d.clone(),
        None => {
            let name = opts.run_name.clone().unwrap_or_else(report::timestamp);
            cfg.runs_dir.join(&cfg.name).join(name)
        }
    };
    let config_file = dir.join("config.toml");
    let config_text = cfg.to_toml()?;
    // A first look before anything is created (a refused run leaves nothing behind) ...
    if resume.is_none() {
        same_config_exists(&config_file, &config_text, &dir)?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    // ... then the run directory's lock, held until the run returns: a second process on the same
    // run is refused (it would write into this run's files), and the kernel releases the lock of
    // a killed run so that `--resume` can continue it.
    let _run_lock = match shard::DirLock::try_acquire(&dir, shard::LockMode::Exclusive)? {
        Ok(lock) => lock,
        Err(holder) => {
            return Err(TrainError::RunInUse {
                dir: dir.clone(),
                holder: shard::lock::describe_holder(holder),
            })
        }
    };
    // ... and the authoritative look under the lock (another process may have started this run
    // name since the first look, and finished).
    if resume.is_none() && same_config_exists(&config_file, &config_text, &dir)? {
        opts.progress.note(&format!(
            "run directory {} exists with the same configuration: continuing it",
            dir.display()
        ));
        resume = Some(dir.clone());
    }
    if resume.is_none() {
        shard::atomic_write(&config_file, config_text.as_bytes())?;
    }
    opts.progress.note(&format!(
        "run directory {}; to continue it after an interruption: train run --resume {}",
        dir.display(),
        dir.display()
    ));
    let git_diff = shard::git_diff_blake3();
    let mut run_json = serde_json::json!({
        "experiment": cfg.name,
        "command": std::env::args().collect::<Vec<_>>(),
        "started_unix": unix_now(),
        "finished_unix": null,
        "resumed": resume.is_some(),
        "git_revision": opts.git_revision,
        "git_dirty": opts.git_revision.as_deref().is_some_and(|r| r.ends_with("-dirty")) || git_diff.is_some(),
        "git_diff_blake3": git_diff,
        "cache": cache_dir.display().to_string(),
        "cache_key": m.key,
        "cache_name": m.name,
        "device": format!("{device:?}"),
        "cuda": tch::Cuda::is_available(),
        "cudnn": tch::Cuda::cudnn_is_available(),
        "libtorch_threads": tch::get_num_threads(),
        // Another CPU's kernels round differently: a run is reproducible on the same kernel set.
        "cpu_capability": crate::torch_ext::cpu_capability().ok(),
        "tch": crate::TCH_VERSION,
        "tool": format!("train {}", env!("CARGO_PKG_VERSION")),
        "layout": {"face": layout.face, "parts": layout.parts, "frames": layout.use_slots},
        "classes": classes,
        "folds_planned": plans.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
        "epochs_planned": t.epochs,
        "precision_effective": if device.is_cuda() { format!("{:?}", t.precision) } else { "Fp32 (CPU)".to_string() },
        "pretrained": cfg.model.pretrained.as_ref().map(|p| p.display().to_string()),
        "init": cfg.model.init,
        "fusion": cfg.model.fusion,
        "fusion_weight": cfg.model.fusion_weight,
        "targets": targets.as_ref().map_or("labels", |t| t.mode.name()),
    });
    let run_json_file = dir.join("run.json");
    shard::atomic_write(
        &run_json_file,
        &serde_json::to_vec_pretty(&run_json).map_err(|e| TrainError::serialize("run.json", e))?,
    )?;
    let runner = Runner {
        cfg,
        dir: dir.clone(),
        cache,
        layout,
        classes: classes.clone(),
        device,
        progress: opts.progress,
        targets,
    };
    let mut results = Vec::new();
    for p in &plans {
        if let Some(stop) = opts.stop_after_epochs {
            let done = existing_epochs(&dir, &p.name);
            if done + stop < cfg.train.epochs {
                // Leave the state an interrupted run leaves: `stop` more epochs, no result.
                let mut short = cfg.clone();
                short.train.epochs = done + stop;
                let partial = Runner {
                    cfg: &short,
                    dir: dir.clone(),
                    cache: runner.cache.clone(),
                    layout: runner.layout.clone(),
                    classes: classes.clone(),
                    device,
                    progress: opts.progress,
                    targets: runner.targets.clone(),
                };
                partial.run_partial(p)?;
                return Ok(RunOutcome {
                    dir,
                    folds: results,
                });
            }
        }
        results.push(runner.run_fold(p)?);
    }
    report::write_metrics(&dir)?;
    report::write_summary(&dir, cfg, &classes, &results)?;
    run_json["finished_unix"] = serde_json::json!(unix_now());
    shard::atomic_write(
        &run_json_file,
        &serde_json::to_vec_pretty(&run_json).map_err(|e| TrainError::serialize("run.json", e))?,
    )?;
    Ok(RunOutcome {
        dir,
        folds: results,
    })
}

fn existing_epochs(dir: &Path, fold: &str) -> usize {
    std::fs::read(dir.join(format!("fold-{fold}")).join("checkpoint.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<CheckpointInfo>(&b).ok())
        .map(|c| c.epoch + 1)
        .unwrap_or(0)
}

impl Runner<'_> {
    /// Runs a fold's epochs up to `cfg.train.epochs` without finishing the fold (no result.json):
    /// the state an interrupted run leaves.
    fn run_partial(&self, plan: &FoldPlan) -> Result<()> {
        let fold_dir = self.dir.join(format!("fold-{}", plan.name));
        let r = self.run_fold(plan);
        // run_fold wrote result.json for the shortened schedule; an interrupted run has none.
        let _ = std::fs::remove_file(fold_dir.join("result.json"));
        for f in [
            "curves.png",
            "curves.svg",
            "confusion.png",
            "confusion.svg",
            "confusion.csv",
        ] {
            let _ = std::fs::remove_file(fold_dir.join(f));
        }
        r.map(|_| ())
    }
}
