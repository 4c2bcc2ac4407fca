//! The model files a recipe names (the dlib shape model and the cascades) and how they load into
//! a face pipeline.

use crate::{CascadeDetector, FaceError, FacePipeline, Result};
use std::path::PathBuf;

/// The model files of a face pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// dlib 68-point model.
    pub shape_predictor: PathBuf,
    /// Primary cascade XML.
    pub cascade: PathBuf,
    /// Fallback cascade XML, if any.
    pub fallback: Option<PathBuf>,
}

impl ModelFiles {
    /// Resolves cascade names the way a recipe names them: a name ending in `.xml` is a path,
    /// any other name a file of `opencv-data` ([`crate::cascade_path`]); the fallback is none
    /// when it is `none`, empty or the primary's name.
    pub fn resolve(shape_predictor: PathBuf, cascade: &str, fallback: &str) -> ModelFiles {
        let fallback = match fallback {
            "none" | "" => None,
            n if n == cascade => None,
            n => Some(cascade_file(n)),
        };
        ModelFiles {
            shape_predictor,
            cascade: cascade_file(cascade),
            fallback,
        }
    }

    /// Loads the pipeline: the dlib model (68 parts), the cascades with their documented box
    /// calibrations, OpenCV's default detection parameters with a 20 px minimum face.
    ///
    /// Errors: unreadable or malformed model files; [`FaceError::ShapeModelParts`] for a dlib
    /// model that is not a 68-point one.
    pub fn load(&self, reinitialise: bool) -> Result<FacePipeline> {
        let predictor = crate::ShapePredictor::load(&self.shape_predictor)?;
        if predictor.num_parts() != 68 {
            return Err(FaceError::ShapeModelParts {
                file: self.shape_predictor.clone(),
                parts: predictor.num_parts(),
            });
        }
        let detector = CascadeDetector::load(&self.cascade)?;
        let mut opts = crate::PipelineOptions {
            detect: crate::DetectParams::default(),
            calibration: crate::BoxCalibration::for_cascade(detector.name()),
            reinitialise,
        };
        opts.detect.min_size = (20, 20);
        let p = FacePipeline::new(detector, predictor, Some(opts));
        Ok(match &self.fallback {
            Some(f) => p.with_fallback(CascadeDetector::load(f)?),
            None => p,
        })
    }
}

/// A cascade name or `.xml` path as a file.
pub fn cascade_file(name: &str) -> PathBuf {
    if name.ends_with(".xml") {
        PathBuf::from(name)
    } else {
        crate::cascade_path(name)
    }
}
