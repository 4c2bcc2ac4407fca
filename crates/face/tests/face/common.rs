use std::path::PathBuf;

pub use testkit::shared_dir as shared;

/// True when a model file installed by `make setup` exists (else [`testkit::unavailable`]).
pub fn model_file_present(path: &std::path::Path, test: &str) -> bool {
    testkit::files_present(test, &[path])
}

/// The dlib model from libdlib-data, or None with a "skipped" line.
pub fn shape_model(test: &str) -> Option<face::ShapePredictor> {
    let path = face::default_shape_model_path();
    model_file_present(&path, test).then(|| face::ShapePredictor::load(&path).expect("model loads"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Shared model instance: loading takes a fraction of a second but tests run in parallel.
pub fn model(test: &str) -> Option<&'static face::ShapePredictor> {
    static MODEL: std::sync::OnceLock<Option<face::ShapePredictor>> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| shape_model(test)).as_ref()
}

/// One image of `shared/reference/dlib_landmarks.json`.
#[derive(serde::Deserialize)]
pub struct RefImage {
    pub image: String,
    pub faces: Vec<RefFace>,
}

/// One face of it: dlib's box (inclusive l, t, r, b) and its 68 integer landmarks.
#[derive(serde::Deserialize)]
pub struct RefFace {
    pub box_ltrb: [i64; 4],
    pub landmarks: Vec<[i64; 2]>,
}
