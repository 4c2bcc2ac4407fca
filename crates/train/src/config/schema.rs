//! What an experiment TOML may say: every key, its type and its default (the paper's setting).
//! Unknown keys are errors so that a typo cannot silently run the default.

use super::Preset;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

pub(super) fn is_one(v: &f64) -> bool {
    *v == 1.0
}

pub(super) fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; runs go to `runs/<name>/<run>/` (default "experiment").
    pub name: String,
    /// `paper` (default) | `tuned`: the defaults of every key the file leaves out ([`Preset`]).
    /// Files written before it was named `preset` say `recipe`, which still reads.
    #[serde(alias = "recipe")]
    pub preset: Preset,
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
            preset: Preset::Paper,
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
