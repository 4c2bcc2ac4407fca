use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = FaceError> = std::result::Result<T, E>;

/// Errors of model loading and face processing.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// A dlib `.dat` file that does not follow the serialisation format.
    #[error("{file}: malformed dlib model at byte {offset}: {reason}")]
    DlibFormat {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An OpenCV cascade XML that cannot be used.
    #[error("{file}: bad cascade: {reason}")]
    Cascade { file: PathBuf, reason: String },
    /// An image that cannot be decoded (truncated, unsupported, too large).
    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },
    /// A face box with no area or outside any sensible range.
    #[error("invalid face box {left},{top},{right},{bottom}: {reason}")]
    BadBox {
        left: i64,
        top: i64,
        right: i64,
        bottom: i64,
        reason: String,
    },
    /// An image with no pixels, or a plane whose size does not match its dimensions.
    #[error("image of {width}×{height} with {len} bytes: {reason}")]
    BadImage {
        width: usize,
        height: usize,
        len: usize,
        reason: String,
    },
    /// A dlib model that does not predict 68 points (the MGLN crops need dlib's 68-point layout).
    #[error("{file}: the shape model predicts {parts} landmarks; the face and part crops need a 68-point model (dlib's shape_predictor_68_face_landmarks.dat)")]
    ShapeModelParts { file: PathBuf, parts: usize },
    /// A cache whose recorded prep settings cannot be read back as a [`crate::SampleRecipe`].
    #[error("cache {cache}: prep settings: {field}: {reason}")]
    Provenance {
        cache: String,
        /// The path of the field in the manifest (`extra.config.cascade`).
        field: String,
        reason: String,
    },
}
