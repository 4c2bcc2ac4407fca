//! One fold's training: the epoch loop (augmentation, mixup, the two losses, the optimiser step),
//! evaluation, the per-epoch checkpoint and metrics, and the fold's outputs.

use super::checkpoint::FoldCheckpoint;
use super::loss::{fuse, mgln_loss, LabelLoss, Mixup, StepLoss};
use super::plan::FoldPlan;
use super::targets::{BatchTarget, VoteTargets};
use super::{StopToken, TrainProgress};
use crate::config::{ClassBalance, ExperimentConfig, Precision};
use crate::loader::{self, Augment, DeviceTransform, Layout, SampleInfo};
use crate::model::{ModelConfig, Network};
use crate::optim::{learning_rate, Optimizer};
use crate::outputs::{self, Confusion, EpochRecord, FoldResult, ScoredSample};
use crate::{Result, TrainError};
use shard::{Cache, KeyedRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{nn, Device, Kind, Tensor};

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
    /// Tripped to stop the run between training steps ([`StopToken::never`] for none).
    pub stop: StopToken,
    /// Every sample's metadata, indexed by record, for the sample ids and subjects of
    /// `predictions.parquet` (`None`: those columns are left empty).
    pub sample_infos: Option<Arc<Vec<SampleInfo>>>,
    /// The run directory is shared with other processes training its other folds (a job-array
    /// task): the run-wide `metrics.jsonl` is left to the run that finishes it.
    pub shared_run: bool,
    /// The trained model every fold starts from (`model.init_from`), resolved and checked.
    pub init: Option<&'a crate::transfer::InitWeights>,
}

impl<'a> Runner<'a> {
    /// A runner of `cfg` on `cache` writing into `dir`, on `device`: the layout (the experiment's
    /// frames of the cache's slots) and class names from the cache; quiet, training against the
    /// labels, never stopped (set `progress`, `targets`, `stop` to change that).
    ///
    /// Errors: a cache whose first record has no usable planes ([`Layout::from_cache`]).
    pub fn new(
        cfg: &'a ExperimentConfig,
        dir: PathBuf,
        cache: Arc<Cache>,
        device: Device,
    ) -> Result<Runner<'a>> {
        Ok(Runner {
            layout: Layout::from_cache(&cache, cfg.train.frames)?,
            classes: cache.manifest().class_names.clone(),
            cfg,
            dir,
            cache,
            device,
            progress: &super::Quiet,
            targets: None,
            stop: StopToken::never(),
            sample_infos: None,
            shared_run: false,
            init: None,
        })
    }
}

impl Runner<'_> {
    /// The network shape for this run's cache and configuration.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig::for_experiment(
            &self.cfg.model,
            self.layout.face,
            self.layout.parts,
            self.layout.frames(),
            self.classes.len(),
        )
    }

    /// How host batches become inputs of a network of shape `mc`.
    pub fn transform(&self, mc: &ModelConfig) -> DeviceTransform {
        DeviceTransform {
            device: self.device,
            face_size: mc.face,
            part_sizes: mc.parts,
            channels_last: self.cfg.train.channels_last,
            parts: mc.kind == crate::config::ModelKind::Mgln && mc.branches.has_local(),
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
        let model = Network::new(&vs.root(), &mc)?;
        crate::model::initialise(
            &vs,
            &mc,
            self.cfg.model.init,
            t.seed ^ plan.index.wrapping_mul(0x9e37_79b9),
        );
        match (&self.init, &self.cfg.model.pretrained) {
            (Some(init), _) => {
                init.plan.apply(&vs, &init.tensors, &init.source.spec)?;
                self.progress.note(&format!(
                    "{}: {} tensors from {}",
                    plan.name,
                    init.plan.loaded.len(),
                    init.source.spec
                ));
            }
            (None, Some(p)) => {
                let n = crate::model::load_vgg16(&mut vs, p)?;
                self.progress
                    .note(&format!("SSM: {n} tensors from {}", p.display()));
            }
            // The CNN has no SSM to load weights into.
            (None, None) if mc.kind == crate::config::ModelKind::Mgln => {
                self.progress.note(&format!(
                    "SSM: no pretrained VGG16 weights (model.pretrained): random init ({:?})",
                    self.cfg.model.init
                ))
            }
            (None, None) => {}
        }
        if t.channels_last && self.device.is_cuda() {
            crate::model::to_channels_last(&vs);
        }
        let is_trunk = |name: &str| !mc.is_class_head(name);
        let mut opt = Optimizer::new(&vs, t).with_trunk(t, &is_trunk);
        // The trainable trunk variables, frozen (no gradient) during the first
        // `freeze_trunk_epochs`; without gradients the backward pass stops at the heads.
        let trunk: Vec<Tensor> = if t.freeze_trunk_epochs > 0 {
            vs.variables()
                .into_iter()
                .filter(|(n, v)| v.requires_grad() && is_trunk(n))
                .map(|(_, v)| v)
                .collect()
        } else {
            Vec::new()
        };
        let checkpoint = FoldCheckpoint::in_dir(&fold_dir);
        let (start_epoch, mut history) = match checkpoint.resume(&vs, &mut opt)? {
            Some(info) => {
                self.progress.note(&format!(
                    "{}: resumed after epoch {} from {}",
                    plan.name,
                    info.epoch + 1,
                    fold_dir.join("checkpoint.json").display()
                ));
                (info.epoch + 1, info.history)
            }
            None => (0, Vec::new()),
        };
        let tf = self.transform(&mc);
        for epoch in start_epoch..t.epochs {
            if self.stop.is_stopped() {
                // Between epochs: the checkpoint of the last finished one is on disk.
                return Err(TrainError::Stopped {
                    run: self.dir.clone(),
                    fold: plan.name.clone(),
                    epoch: epoch + 1,
                });
            }
            if !trunk.is_empty() {
                let frozen = epoch < t.freeze_trunk_epochs;
                for v in &trunk {
                    let _ = v.set_requires_grad(!frozen);
                }
            }
            let rec = self.train_epoch(&model, &mut opt, &tf, plan, epoch)?;
            let mut rec = rec;
            let last = epoch + 1 == t.epochs;
            let mut scored = None;
            if last || (epoch + 1) % t.eval_every == 0 {
                let test = self.score(&model, &tf, &plan.test)?;
                let conf = self.confusion_of(&test);
                rec.test_accuracy = Some(conf.accuracy());
                if !plan.validation.is_empty() {
                    rec.validation_accuracy = Some(self.evaluate(&model, &tf, &plan.validation)?.0);
                }
                rec.confusion = Some(conf.counts.clone());
                scored = Some(test);
            }
            history.push(rec.clone());
            // The predictions and weights of the epoch the selection rule reports so far, written
            // before the checkpoint: a resumed fold finds those of its chosen epoch on disk.
            if let Some(test) = scored {
                let chosen = outputs::fold_result(&plan.name, &history, t.selection).epoch;
                if chosen == rec.epoch {
                    let no_infos = Vec::new();
                    outputs::write_predictions(
                        &fold_dir.join("predictions.parquet"),
                        &self.classes,
                        &test,
                        self.sample_infos.as_deref().unwrap_or(&no_infos),
                    )?;
                    outputs::weights::save_reported_weights(&vs, &fold_dir)?;
                }
            }
            checkpoint.save(&vs, &opt, epoch, &history)?;
            self.progress.epoch_end(&rec);
            if !self.shared_run {
                outputs::write_metrics(&self.dir)?;
            }
            outputs::tensorboard::write_fold_events(&fold_dir, self.started_unix(), &history)?;
        }
        let result = outputs::fold_result(&plan.name, &history, self.cfg.train.selection);
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
                outputs::figures::write_confusion(fold_dir, &conf, &self.classes, &title)?;
            }
            outputs::figures::write_curves(
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
            .unwrap_or_else(|| super::run_dir::unix_now() as f64)
    }

    fn train_epoch(
        &self,
        model: &Network,
        opt: &mut Optimizer,
        tf: &DeviceTransform,
        plan: &FoldPlan,
        epoch: usize,
    ) -> Result<EpochRecord> {
        let train_cfg = &self.cfg.train;
        // libtorch's own generator (the CNN's dropout) restarts from (seed, fold, epoch) at every
        // epoch, so that a resumed run draws what the uninterrupted one drew.
        let torch_seed =
            KeyedRng::new(&[train_cfg.seed, plan.index, epoch as u64, 0xd0]).next_u64() >> 1;
        tch::manual_seed(torch_seed as i64);
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
        let label_loss = self.label_loss(plan);
        for (step, batch) in rx.into_iter().enumerate() {
            opt.set_lr(learning_rate(
                train_cfg,
                epoch as f64 + step as f64 / batches.max(1) as f64,
            ));
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
                train_cfg.rotate,
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
            } = mgln_loss(
                model,
                input,
                &loss_labels,
                soft,
                mix.as_ref(),
                &label_loss,
                amp,
            )?;
            opt.zero_grad();
            loss.backward();
            if train_cfg.grad_clip > 0.0 {
                opt.clip_grad_norm(train_cfg.grad_clip);
            }
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
            if self.stop.is_stopped() {
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
            lr: opt.lr(),
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

    /// The cross-entropy options of this run: label smoothing, and class weights from the fold's
    /// training labels under `class_balance = "loss"`.
    fn label_loss(&self, plan: &FoldPlan) -> LabelLoss {
        let t = &self.cfg.train;
        let class_weights = (t.class_balance == ClassBalance::Loss).then(|| {
            let mut counts = plan.train_class_counts.clone();
            counts.resize(self.classes.len(), 0);
            let w = LabelLoss::balanced_weights(&counts);
            Tensor::from_slice(&w).to_device(self.device)
        });
        LabelLoss {
            smoothing: t.label_smoothing,
            class_weights,
        }
    }

    /// Accuracy and confusion matrix of the fused prediction on `records` (no augmentation).
    pub fn evaluate(
        &self,
        model: &Network,
        tf: &DeviceTransform,
        records: &[u64],
    ) -> Result<(f64, Confusion)> {
        let conf = self.confusion_of(&self.score(model, tf, records)?);
        Ok((conf.accuracy(), conf))
    }

    /// The confusion matrix of scored samples.
    fn confusion_of(&self, scored: &[ScoredSample]) -> Confusion {
        let mut conf = Confusion::new(self.classes.len());
        for s in scored {
            conf.add(s.label as usize, s.predicted as usize);
        }
        conf
    }

    /// The fused class probabilities ([`fuse`]) of every readable record of `records`, in
    /// order, in eval mode and without augmentation; with `tta_flip`, the mean of the
    /// probabilities of each sample and its mirror image.
    ///
    /// Errors: cache and libtorch errors (damaged records are skipped only with
    /// `skip_bad_records`).
    pub fn score(
        &self,
        model: &Network,
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
                let probs_of = |aug: Option<&[Augment]>| -> Result<Tensor> {
                    let (input, _) = tf.apply(&batch, &self.layout, aug);
                    let out = crate::torch_ext::autocast_bf16(self.device, amp, || {
                        model.forward(&input, false)
                    })?;
                    Ok(fuse(
                        &out.global,
                        &out.local,
                        self.cfg.model.fusion,
                        self.cfg.model.fusion_weight,
                    ))
                };
                let mut probs = probs_of(None)?;
                if t.tta_flip {
                    let mirrored = vec![Augment::mirror(true); batch.n];
                    probs = (probs + probs_of(Some(&mirrored))?) * 0.5;
                }
                let probs = probs.to_device(Device::Cpu);
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
