use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = FaceError> = std::result::Result<T, E>;

/// Errors of model loading and face processing.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    /// An operating-system error on `path`.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error (in the message, not chained as a `source()`, so that it
        /// is printed once).
        cause: std::io::Error,
    },
    /// A dlib `.dat` file that does not follow the serialisation format.
    #[error("{file}: malformed dlib model at byte {offset}: {reason}")]
    DlibFormat {
        /// The file.
        file: PathBuf,
        /// Byte offset in the file.
        offset: u64,
        /// What is wrong, in words.
        reason: String,
    },
    /// An OpenCV cascade XML that cannot be used.
    #[error("{file}: bad cascade: {reason}")]
    Cascade {
        /// The file.
        file: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// An image that cannot be decoded (truncated, unsupported, too large).
    #[error("{path}: cannot decode image: {reason}")]
    Decode {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A video that FFmpeg cannot read (not a video, no video stream, truncated, corrupt), or
    /// FFmpeg missing.
    #[error("{path}: video: {reason}")]
    Video {
        /// The file.
        path: PathBuf,
        /// What kind of fault it is.
        fault: crate::video::VideoFault,
        /// What is wrong, in words (FFmpeg's own message where it gave one).
        reason: String,
    },
    /// A face box with no area or outside any sensible range.
    #[error("invalid face box {left},{top},{right},{bottom}: {reason}")]
    BadBox {
        /// Left edge (pixels).
        left: i64,
        /// Top edge (pixels).
        top: i64,
        /// Right edge (pixels).
        right: i64,
        /// Bottom edge (pixels).
        bottom: i64,
        /// What is wrong, in words.
        reason: String,
    },
    /// An image with no pixels, or a plane whose size does not match its dimensions.
    #[error("image of {width}×{height} with {len} bytes: {reason}")]
    BadImage {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Length (records or bytes).
        len: usize,
        /// What is wrong, in words.
        reason: String,
    },
    /// A dlib model that does not predict 68 points (the MGLN crops need dlib's 68-point layout).
    #[error("{file}: the shape model predicts {parts} landmarks; the face and part crops need a 68-point model (dlib's shape_predictor_68_face_landmarks.dat)")]
    ShapeModelParts {
        /// The file.
        file: PathBuf,
        /// How many points the model predicts.
        parts: usize,
    },
}
