//! Experiment configuration (`manifests/experiments/*.toml`). Defaults are the paper's setting;
//! unknown keys are errors so that a typo cannot silently run the default.

use crate::overrides::Override;
use crate::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which branches the network has (ablation switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Branches {
    /// GFM and PBM (the paper).
    Both,
    /// The global face module alone.
    Gfm,
    /// The part-based module alone.
    Pbm,
}

impl Branches {
    /// The GFM exists.
    pub fn has_global(self) -> bool {
        matches!(self, Branches::Both | Branches::Gfm)
    }
    /// The PBM exists.
    pub fn has_local(self) -> bool {
        matches!(self, Branches::Both | Branches::Pbm)
    }
}

/// GFM sampling variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deform {
    /// The authors' ConvOffset2D: one offset per channel and pixel (the paper).
    Channel,
    /// A true deformable 3×3 convolution: one offset per tap and pixel.
    Dcn,
    /// Plain 3×3 convolutions.
    None,
}

/// How the two branches' scores become one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fusion {
    /// The authors' code: the arg-max of the raw score sum, here w·GFM + (1−w)·PBM (w = 0.5 has
    /// the arg-max of GFM + PBM). Probabilities (for `train predict`) are the softmax of that sum.
    Sum,
    /// w·softmax(GFM) + (1−w)·softmax(PBM): each branch's scores made probabilities first, so
    /// neither branch dominates by the scale of its scores.
    SoftmaxAverage,
}

/// How the network's weights start (before any pretrained VGG16 weights are loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitScheme {
    /// The authors' code (torchvision's VGG init): every conv weight N(0, √(2 / (k²·c_out))),
    /// conv biases 0, batch norm weight 1 and bias 0; the LSTMs as PyTorch initialises them,
    /// U(±1/√hidden) for weights and biases; offset convs stay near zero (N(0, 0.01) for the
    /// per-channel offsets, 0 for the DCN's).
    Authors,
    /// tch's defaults: Kaiming-uniform conv weights with zero biases, tch's LSTM and batch-norm
    /// initialisation (the behaviour before `init` existed).
    Tch,
}

/// Arithmetic precision of the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain fp32.
    Fp32,
    /// fp32 storage, TF32 tensor-core matmuls/convs on CUDA (fp32 on CPU).
    Tf32,
    /// bf16 autocast on CUDA (fp32 on CPU).
    Bf16,
}

impl Precision {
    /// Whether TF32 tensor-core arithmetic is allowed under this precision (CUDA only).
    pub fn allows_tf32(self) -> bool {
        self != Precision::Fp32
    }
}

/// Evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Leave-one-fold-out over the cache's folds.
    Kfold,
    /// Train on `train`, select on `validation`, report `test` (FER2013's Usage).
    Split,
}

/// How the reported epoch is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The last epoch of the fixed schedule (default for k-fold).
    Final,
    /// The epoch with the best accuracy on a validation set that is never the test fold: the
    /// `validation` split (protocol split) or a subject-disjoint share of the training folds.
    Validation,
}

/// Which network is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// MGLN (the paper; default).
    #[default]
    Mgln,
    /// The baseline every table needs: a plain batch-normalised CNN on the face crop alone
    /// (four blocks of conv-BN-ReLU ×2 and max-pool, 32·64·128·256 channels × `width`, global
    /// average pooling, dropout 0.3, a linear layer). The MGLN switches (branches, deform,
    /// fusion, LSTM, parts) do not apply to it.
    Cnn,
}

/// The optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// `torch.optim.Adam`: weight decay as an L2 term in the gradient (the paper).
    Adam,
    /// `torch.optim.AdamW`: decoupled weight decay, p ← p·(1 − lr·weight_decay) before the Adam
    /// step (Loshchilov & Hutter 2019).
    Adamw,
    /// `torch.optim.SGD` with Nesterov momentum (`momentum`, no dampening; weight decay as L2).
    Sgd,
}

/// How the learning rate moves over training (evaluated at every step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr` until `lr_step_epoch`, then `lr · lr_gamma` (the paper).
    Step,
    /// Cosine decay from `lr` to 0 over the epochs after the warmup.
    Cosine,
    /// One cycle (Smith 2018, `torch.optim.lr_scheduler.OneCycleLR`'s defaults): cosine from
    /// lr/25 up to `lr` over the first 30 % of the steps (or over `warmup_epochs` when set),
    /// then cosine down to lr/25·10⁻⁴.
    Onecycle,
}

/// Compensation for imbalanced classes (RAF-DB, FER2013 and AffectNet are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassBalance {
    /// Every sample weighs the same (the paper).
    None,
    /// Cross-entropy weighted by class, w_c = N / (C · n_c) over the fold's training samples
    /// (`torch.nn.CrossEntropyLoss(weight=…)`: a weighted mean). Label targets only; soft FER+
    /// targets stay unweighted.
    Loss,
}

/// A named set of defaults for everything the experiment file does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// The paper's and the authors' code's settings (default): Adam at 1e-4, a step at epoch 80,
    /// mixup α = 1, small shift/scale jitter and flips, the plain VGG trunk. Pinned by the PyTorch
    /// oracle tests.
    #[default]
    Paper,
    /// What won on held-out subjects on this project's CPU experiments (`docs/BENCHMARKS.md`,
    /// "Training recipe"): AdamW (weight decay 1e-4), one-cycle to lr 3e-3, label smoothing 0.1,
    /// no mixup, rotation ±10°, scale ±10 %, shift ±10 % with flips, flip averaging at test,
    /// gradient clipping at norm 5, batch norm in the SSM and behind it, no ReLU on the scores.
    Tuned,
}

impl Recipe {
    /// The full configuration this recipe gives before the experiment file's keys are laid over
    /// it (every key of the file still wins).
    pub fn base(self) -> ExperimentConfig {
        let mut cfg = ExperimentConfig {
            recipe: self,
            ..ExperimentConfig::default()
        };
        if self == Recipe::Tuned {
            let (m, t) = (&mut cfg.model, &mut cfg.train);
            m.ssm_batchnorm = true;
            m.head_batchnorm = true;
            m.head_relu = false;
            t.optimizer = OptimizerKind::Adamw;
            t.lr = 3e-3;
            t.weight_decay = 1e-4;
            t.schedule = Schedule::Onecycle;
            t.label_smoothing = 0.1;
            t.mixup_alpha = 0.0;
            t.rotate = 10.0;
            t.scale = 0.1;
            t.shift = 0.1;
            t.tta_flip = true;
            t.grad_clip = 5.0;
        }
        cfg
    }
}

/// Model switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// `mgln` (default) | `cnn`: the network ([`ModelKind`]).
    pub kind: ModelKind,
    /// `both` | `gfm` | `pbm` (default both).
    pub branches: Branches,
    /// `channel` | `dcn` | `none` (default channel).
    pub deform: Deform,
    /// How the branches' scores are fused into the prediction: `sum` (default, the authors' code:
    /// arg-max of the weighted sum of raw scores) or `softmax-average`.
    pub fusion: Fusion,
    /// Weight w of the GFM in the fusion, w·GFM + (1−w)·PBM (default 0.5: the authors' 1:1).
    pub fusion_weight: f64,
    /// Weight initialisation: `authors` (default) or `tch` (recorded in run.json).
    pub init: InitScheme,
    /// Channel multiplier (default 1; pretrained weights need 1).
    pub width: f64,
    /// ImageNet VGG16 weights as safetensors with torchvision names; none = the documented random
    /// init (Kaiming-uniform convs), and the run says so. Default none.
    pub pretrained: Option<PathBuf>,
    /// Resize the face to this (height, width) on the device (default: the cache's 128×128).
    pub face_size: Option<(i64, i64)>,
    /// Scale of the part crops on the device (default 1).
    pub part_scale: f64,
    /// LSTM output side (hidden = side²; default 16).
    pub lstm_side: i64,
    /// LSTM layers (default 3).
    pub lstm_layers: i64,
    /// ReLU on the class scores before pooling, as the authors' heads do (default true).
    pub head_relu: bool,
    /// Batch normalisation after every SSM conv (default false = the paper; true lets small
    /// networks train from a random init; pretrained torchvision weights are for the plain VGG16).
    pub ssm_batchnorm: bool,
    /// Batch normalisation after every conv behind the SSM (GFM blocks and head, LST blocks,
    /// part end; default false = the paper). See [`crate::model::ModelConfig::head_batchnorm`].
    pub head_batchnorm: bool,
    /// Channels `[a, b]` of the two hidden 1×1 convs of the GFM head (64→a→b→C at width 1) and
    /// of the part end (3→a→b→C) (default: the paper's 32 and 16 scaled by `width`, at least 8).
    /// Small-width networks learn slowly through an 8-channel head (docs/BENCHMARKS.md, "Training
    /// recipe").
    pub head_channels: Option<(i64, i64)>,
    /// Start from a trained model instead of the init: `"<run dir>"` or `"<run dir>#<fold>"`
    /// (`#3`, `#fold3`, `#split`; the fold is required when the run trained several), or a
    /// directory `train export` wrote. Every tensor whose name and shape match is loaded, the
    /// class heads too when both class lists hold the same classes (matched by name, reordered
    /// as needed), otherwise the heads keep their init. The fold's reported epoch's weights
    /// are used. Refused before training when the source's preprocessing differs (model kind,
    /// input sizes, frames, the cache's planes and crop settings). What was loaded and skipped,
    /// and the source's cache key and configuration, go into run.json. Default none.
    pub init_from: Option<String>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            kind: ModelKind::Mgln,
            branches: Branches::Both,
            deform: Deform::Channel,
            fusion: Fusion::Sum,
            fusion_weight: 0.5,
            init: InitScheme::Authors,
            width: 1.0,
            pretrained: None,
            face_size: None,
            part_scale: 1.0,
            lstm_side: 16,
            lstm_layers: 3,
            head_relu: true,
            ssm_batchnorm: false,
            head_batchnorm: false,
            head_channels: None,
            init_from: None,
        }
    }
}

/// Optimisation and data switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Epochs (default 151).
    pub epochs: usize,
    /// Batch size (default 64).
    pub batch: usize,
    /// `adam` (default) | `adamw` | `sgd` ([`OptimizerKind`]).
    pub optimizer: OptimizerKind,
    /// Peak learning rate (default 1e-4).
    pub lr: f64,
    /// SGD's Nesterov momentum (default 0.9; other optimisers ignore it).
    pub momentum: f64,
    /// `step` (default) | `cosine` | `onecycle` ([`Schedule`]).
    pub schedule: Schedule,
    /// Linear warmup from 0 to `lr` over this many epochs (fractions allowed) under `step` and
    /// `cosine`; the rising phase under `onecycle` (default 0: none / onecycle's 30 %).
    pub warmup_epochs: f64,
    /// Epoch at which `schedule = "step"` multiplies the learning rate by `lr_gamma` (default 80).
    pub lr_step_epoch: usize,
    /// Step factor (default 0.1).
    pub lr_gamma: f64,
    /// Weight decay: L2 in the gradient under `adam` and `sgd`, decoupled under `adamw`
    /// (default 0).
    pub weight_decay: f64,
    /// Label smoothing ε of the cross-entropy against labels: targets (1 − ε)·onehot + ε/C
    /// (default 0; soft FER+ targets are used as they are).
    pub label_smoothing: f64,
    /// `none` (default) | `loss`: class-balanced cross-entropy ([`ClassBalance`]).
    pub class_balance: ClassBalance,
    /// Clip the global gradient norm to this before each step; 0 disables (default 0).
    pub grad_clip: f64,
    /// Mixup α on the peak face; 0 disables (default 1, the authors').
    pub mixup_alpha: f64,
    /// Frame slots used (default: all the cache has).
    pub frames: Option<usize>,
    /// Random shift of the crops, ± fraction of their size (default 0.05).
    pub shift: f64,
    /// Random scale of the crops, ± fraction (default 0.05).
    pub scale: f64,
    /// Random rotation, ± degrees (default 0). Like shift, scale and flip it is drawn once per
    /// sample and applied to the face and to every part crop and frame of that sample, each
    /// about its own centre: the parts turn with the face, though a part crop cannot show what
    /// lay outside it.
    pub rotate: f64,
    /// Random horizontal flip of face and parts together (default true).
    pub flip: bool,
    /// At evaluation, average the class probabilities of each sample and its mirror image
    /// (face and parts flipped together) (default false).
    pub tta_flip: bool,
    /// Seed of the init, the sample order, mixup and augmentation (default 0).
    pub seed: u64,
    /// `fp32` | `tf32` | `bf16` (default tf32; CPU runs use fp32 whatever is set). On CUDA, `fp32`
    /// switches TF32 off for cuBLAS and cuDNN (libtorch's own default leaves it on for cuDNN
    /// convolutions), `tf32` and `bf16` switch it on.
    pub precision: Precision,
    /// Adam as libtorch's fused kernel over all parameters (default true, the kernel of
    /// `torch.optim.Adam(fused=True)`), or a loop of tensor operations per parameter (false).
    /// Both equal `torch.optim.Adam` within rounding; the checkpointed state is the same.
    pub fused_adam: bool,
    /// channels_last memory format on CUDA (default true).
    pub channels_last: bool,
    /// `auto` (CUDA when available) | `cpu` | `cuda` | `cuda:N` (default auto).
    pub device: String,
    /// Decoder threads of the loader (default 4).
    pub workers: usize,
    /// Batches decoded ahead (default 4).
    pub prefetch: usize,
    /// How the reported epoch is chosen (default final).
    pub selection: Selection,
    /// Share of training subjects held out for validation when `selection = "validation"` under
    /// k-fold, or under `split` when the cache has no validation split (RAF-DB, AffectNet: whole
    /// subjects when the dataset names them, else single samples) (default 0.1).
    pub validation_share: f64,
    /// Evaluate every N epochs and at the last (default 1).
    pub eval_every: usize,
    /// CPU threads of libtorch (default: libtorch's choice).
    pub threads: Option<i32>,
    /// Skip records that fail to decode and count them (default false: a damaged cache stops the
    /// run).
    pub skip_bad_records: bool,
    /// Learning-rate factor of the trunk, every variable but the class heads
    /// ([`crate::model::ModelConfig::class_head_prefixes`]): the trunk steps at
    /// `factor × lr` under every schedule, the heads at `lr` (default 1; 0.1 is usual when
    /// fine-tuning from `model.init_from`). Written into config.toml only when set, so that runs
    /// from before it existed resume.
    #[serde(skip_serializing_if = "is_one")]
    pub trunk_lr_factor: f64,
    /// Train only the class heads for this many epochs at the start, the trunk frozen (no
    /// gradient, no update; its batch norms still adapt their statistics), then everything
    /// (default 0). Written into config.toml only when set.
    #[serde(skip_serializing_if = "is_zero")]
    pub freeze_trunk_epochs: usize,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            epochs: 151,
            batch: 64,
            optimizer: OptimizerKind::Adam,
            lr: 1e-4,
            momentum: 0.9,
            schedule: Schedule::Step,
            warmup_epochs: 0.0,
            lr_step_epoch: 80,
            lr_gamma: 0.1,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            class_balance: ClassBalance::None,
            grad_clip: 0.0,
            mixup_alpha: 1.0,
            frames: None,
            shift: 0.05,
            scale: 0.05,
            rotate: 0.0,
            flip: true,
            tta_flip: false,
            seed: 0,
            precision: Precision::Tf32,
            fused_adam: true,
            channels_last: true,
            device: "auto".into(),
            workers: 4,
            prefetch: 4,
            selection: Selection::Final,
            validation_share: 0.1,
            eval_every: 1,
            threads: None,
            skip_bad_records: false,
            trunk_lr_factor: 1.0,
            freeze_trunk_epochs: 0,
        }
    }
}

fn is_one(v: &f64) -> bool {
    *v == 1.0
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// Lays `top` over `base`: tables merge key by key, any other value replaces.
fn overlay(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => overlay(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; runs go to `runs/<name>/<run>/` (default "experiment").
    pub name: String,
    /// `paper` (default) | `tuned`: the defaults of every key the file leaves out ([`Recipe`]).
    pub recipe: Recipe,
    /// The cache: a directory, a cache name under `cache_dir`, or `name@keyprefix` to pin one of
    /// several caches of that name (required when they come from different sources).
    pub cache: String,
    /// Where named caches live (default data/cache).
    pub cache_dir: PathBuf,
    /// `kfold` | `split` (default kfold).
    pub protocol: Protocol,
    /// Test folds to run (default: all).
    pub folds: Option<Vec<u16>>,
    /// Where runs are written (default runs).
    pub runs_dir: PathBuf,
    /// Model switches.
    pub model: ModelSection,
    /// Training switches.
    pub train: TrainSection,
    /// The grid `train sweep` expands ([`crate::sweep`]); `train run` runs the file's settings
    /// as written and ignores it. Never written into a run's config.toml.
    #[serde(skip_serializing)]
    pub sweep: Option<toml::Table>,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        ExperimentConfig {
            name: "experiment".into(),
            recipe: Recipe::Paper,
            cache: String::new(),
            cache_dir: PathBuf::from("data/cache"),
            protocol: Protocol::Kfold,
            folds: None,
            runs_dir: PathBuf::from("runs"),
            model: ModelSection::default(),
            train: TrainSection::default(),
            sweep: None,
        }
    }
}

impl ExperimentConfig {
    /// Reads an experiment TOML.
    ///
    /// Errors: [`TrainError::Io`], [`TrainError::ConfigFile`] with the line of a bad key.
    pub fn load(path: &Path) -> Result<ExperimentConfig> {
        Self::load_with_overrides(path, &[])
    }

    /// Reads an experiment TOML with `--set` overrides laid over the file ([`Self::parse_with_overrides`]).
    ///
    /// Errors: as [`Self::load`], and [`TrainError::Override`].
    pub fn load_with_overrides(path: &Path, overrides: &[Override]) -> Result<ExperimentConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::parse_with_overrides(&text, path, overrides)
    }

    /// Parses TOML text; `file` names it in errors.
    /// The file's `recipe` picks the defaults ([`Recipe::base`]); every key the file sets is laid
    /// over them.
    pub fn parse(text: &str, file: &Path) -> Result<ExperimentConfig> {
        Self::parse_with_overrides(text, file, &[])
    }

    /// Parses TOML text and lays `overrides` over it, as if the file had set those keys: the
    /// same types, the same checks, and `recipe` itself may be overridden.
    ///
    /// Errors: [`TrainError::ConfigFile`] for the file (with the line of a bad key);
    /// [`TrainError::Override`] naming the override that names no key (with the nearest
    /// keys), has a value of the wrong type, or fails a range check.
    pub fn parse_with_overrides(
        text: &str,
        file: &Path,
        overrides: &[Override],
    ) -> Result<ExperimentConfig> {
        let bad = |e: toml::de::Error| {
            // The 1-based line of the error's first byte.
            let line = e.span().map_or(1, |s| {
                1 + text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
            });
            TrainError::ConfigFile {
                file: file.to_path_buf(),
                line,
                reason: e.message().to_string(),
            }
        };
        // Parsed once as written, for the line numbers of bad keys and values.
        toml::from_str::<ExperimentConfig>(text).map_err(bad)?;
        let mut user: toml::Table = toml::from_str(text).map_err(bad)?;
        for o in overrides {
            o.apply(&mut user)?;
            // One at a time, so that an error names the override that caused it.
            if let Err(e) = user.clone().try_into::<ExperimentConfig>() {
                let reason = e.message().to_string();
                let nearest = if reason.starts_with("unknown field") {
                    format!(
                        "; no such key (nearest: {})",
                        crate::overrides::nearest_keys(&o.key, &Self::known_keys(), 3).join(", ")
                    )
                } else {
                    String::new()
                };
                return Err(o.error(&format!("{reason}{nearest}")));
            }
        }
        let written: ExperimentConfig = user
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| bad(e))?;
        let cfg = if written.recipe == Recipe::Paper {
            written
        } else {
            let mut merged = written.recipe.base().to_toml_table()?;
            overlay(&mut merged, user);
            merged
                .try_into()
                .map_err(|e: toml::de::Error| TrainError::ConfigFile {
                    file: file.to_path_buf(),
                    line: 1,
                    reason: e.message().to_string(),
                })?
        };
        cfg.check().map_err(|reason| match overrides {
            [] => TrainError::ConfigFile {
                file: file.to_path_buf(),
                line: 1,
                reason,
            },
            _ => TrainError::Override {
                set: overrides
                    .iter()
                    .map(Override::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                reason: format!("{reason} (in {} with these overrides)", file.display()),
            },
        })?;
        Ok(cfg)
    }

    /// Every dotted key an experiment TOML may set (`name`, `model.branches`, `train.seed`, …),
    /// for "did you mean" lists. Read from the deserialiser itself, so it cannot fall behind the
    /// structs: a probe key in each table is refused with the list of the table's fields.
    pub fn known_keys() -> Vec<String> {
        let fields = |probe: &str| -> Vec<String> {
            let msg = toml::from_str::<ExperimentConfig>(probe)
                .err()
                .map(|e| e.message().to_string())
                .unwrap_or_default();
            let list = msg.split("expected one of").nth(1).unwrap_or("");
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let mut keys = Vec::new();
        for top in fields("probe_key__ = 0") {
            match top.as_str() {
                "model" | "train" => keys.extend(
                    fields(&format!("[{top}]\nprobe_key__ = 0"))
                        .into_iter()
                        .map(|k| format!("{top}.{k}")),
                ),
                _ => keys.push(top),
            }
        }
        keys
    }

    /// Range checks serde cannot do.
    pub fn check(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        let m = &self.model;
        if self.cache.is_empty() {
            return Err("`cache` is required (a cache directory or a cache name)".into());
        }
        if t.epochs == 0 || t.batch == 0 {
            return Err("train.epochs and train.batch must be positive".into());
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(t.lr) || !(0.0..=1.0).contains(&m.fusion_weight) || t.mixup_alpha < 0.0 {
            return Err("need lr > 0, 0 ≤ fusion_weight ≤ 1, mixup_alpha ≥ 0".into());
        }
        if m.head_channels.is_some_and(|(a, b)| a < 1 || b < 1) {
            return Err("need head_channels ≥ 1".into());
        }
        if !positive(m.width) || !positive(m.part_scale) || m.lstm_side < 1 || m.lstm_layers < 1 {
            return Err("need width > 0, part_scale > 0, lstm_side ≥ 1, lstm_layers ≥ 1".into());
        }
        if !(0.0..0.9).contains(&t.validation_share) || t.eval_every == 0 {
            return Err("need 0 ≤ validation_share < 0.9 and eval_every ≥ 1".into());
        }
        if !(0.0..1.0).contains(&t.label_smoothing) || !(0.0..1.0).contains(&t.momentum) {
            return Err("need 0 ≤ label_smoothing < 1 and 0 ≤ momentum < 1".into());
        }
        if !(t.grad_clip >= 0.0 && t.warmup_epochs >= 0.0 && t.weight_decay >= 0.0) {
            return Err("need grad_clip ≥ 0, warmup_epochs ≥ 0, weight_decay ≥ 0".into());
        }
        if !(0.0..=180.0).contains(&t.rotate) || !(0.0..1.0).contains(&t.scale) {
            return Err("need 0 ≤ rotate ≤ 180 (degrees) and 0 ≤ scale < 1".into());
        }
        if !(t.trunk_lr_factor.is_finite() && t.trunk_lr_factor >= 0.0) {
            return Err("need trunk_lr_factor ≥ 0".into());
        }
        if t.freeze_trunk_epochs >= t.epochs {
            return Err(format!(
                "freeze_trunk_epochs ({}) must be below epochs ({}): the trunk would never train",
                t.freeze_trunk_epochs, t.epochs
            ));
        }
        if m.init_from.is_some() && m.pretrained.is_some() {
            return Err(
                "model.init_from and model.pretrained are both set: a run starts from one".into(),
            );
        }
        if m.init_from.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err("model.init_from is empty: a run directory (#fold) or an export".into());
        }
        Ok(())
    }

    /// The resolved configuration as TOML (written into every run directory and compared on
    /// resume).
    ///
    /// Errors: [`TrainError::Serialize`] for a value TOML cannot hold, never an empty text (two
    /// different configurations must not compare equal).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| TrainError::serialize("experiment configuration", e))
    }

    /// The configuration as a TOML table (every key, the recipe's defaults filled in).
    fn to_toml_table(&self) -> Result<toml::Table> {
        toml::Table::try_from(self)
            .map_err(|e| TrainError::serialize("experiment configuration", e))
    }

    /// The training recipe as resolved, for `run.json`: every option that shapes optimisation
    /// (the fine-tuning keys only when set).
    pub fn recipe_summary(&self) -> serde_json::Value {
        let t = &self.train;
        let mut v = serde_json::json!({
            "recipe": self.recipe,
            "model_kind": self.model.kind,
            "optimizer": t.optimizer,
            "lr": t.lr,
            "momentum": t.momentum,
            "schedule": t.schedule,
            "warmup_epochs": t.warmup_epochs,
            "lr_step_epoch": t.lr_step_epoch,
            "lr_gamma": t.lr_gamma,
            "weight_decay": t.weight_decay,
            "label_smoothing": t.label_smoothing,
            "class_balance": t.class_balance,
            "grad_clip": t.grad_clip,
            "mixup_alpha": t.mixup_alpha,
            "augment": {"shift": t.shift, "scale": t.scale, "rotate_degrees": t.rotate, "flip": t.flip},
            "tta_flip": t.tta_flip,
            "epochs": t.epochs,
            "batch": t.batch,
        });
        if self.model.init_from.is_some() || t.trunk_lr_factor != 1.0 || t.freeze_trunk_epochs > 0 {
            v["init_from"] = serde_json::json!(self.model.init_from);
            v["trunk_lr_factor"] = serde_json::json!(t.trunk_lr_factor);
            v["freeze_trunk_epochs"] = serde_json::json!(t.freeze_trunk_epochs);
        }
        v
    }

    /// The cache directory `cache` names: a cache directory, a cache name under `cache_dir`, or
    /// `name@keyprefix` (rules in [`shard::resolve_cache`]).
    ///
    /// Errors: [`TrainError::Cache`] with [`shard::ShardError::CacheRef`] when nothing matches,
    /// or when a bare name matches caches built from different sources (listed).
    pub fn resolve_cache(&self) -> Result<PathBuf> {
        Ok(shard::resolve_cache(&self.cache_dir, &self.cache)?)
    }
}
