//! The full chain: cascade detection → box calibration → landmarks (→ re-initialisation), and
//! tracking through image sequences so that a sequence costs one detection.

use crate::{CascadeDetector, DetectParams, FaceBox, GrayImage, Landmarks, Rect, ShapePredictor};
use serde::{Deserialize, Serialize};

/// Maps a cascade box to the dlib-detector box convention the predictor was trained on:
/// side = `scale` × width, centre moved by (`dx`, `dy`) × width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxCalibration {
    /// Side of the dlib box relative to the cascade box width.
    pub scale: f64,
    /// Horizontal centre shift in cascade-box widths.
    pub dx: f64,
    /// Vertical centre shift in cascade-box widths (positive = down).
    pub dy: f64,
}

impl BoxCalibration {
    /// Measured mapping for `haarcascade_frontalface_default` (s 0.88, dx −0.01, dy +0.055;
    /// `docs/specs/face-models.md`).
    pub const HAAR_DEFAULT: BoxCalibration = BoxCalibration {
        scale: 0.88,
        dx: -0.01,
        dy: 0.055,
    };
    /// `haarcascade_frontalface_alt2`.
    pub const HAAR_ALT2: BoxCalibration = BoxCalibration {
        scale: 0.885,
        dx: 0.0,
        dy: 0.06,
    };
    /// `lbpcascade_frontalface`.
    pub const LBP: BoxCalibration = BoxCalibration {
        scale: 0.90,
        dx: 0.0,
        dy: 0.06,
    };
    /// No change.
    pub const IDENTITY: BoxCalibration = BoxCalibration {
        scale: 1.0,
        dx: 0.0,
        dy: 0.0,
    };

    /// The documented mapping for a cascade name, identity for unknown ones.
    pub fn for_cascade(name: &str) -> BoxCalibration {
        match name {
            "haarcascade_frontalface_default" => Self::HAAR_DEFAULT,
            "haarcascade_frontalface_alt2" => Self::HAAR_ALT2,
            "lbpcascade_frontalface" | "lbpcascade_frontalface_improved" => Self::LBP,
            _ => Self::IDENTITY,
        }
    }

    /// Applies the mapping; the result is a square inclusive box.
    pub fn apply(&self, r: &Rect) -> FaceBox {
        let w = r.w as f64;
        let cx = r.x as f64 + (w - 1.0) / 2.0 + self.dx * w;
        let cy = r.y as f64 + (r.h as f64 - 1.0) / 2.0 + self.dy * w;
        square_box(cx, cy, self.scale * w)
    }
}

fn square_box(cx: f64, cy: f64, side: f64) -> FaceBox {
    let side = side.max(1.0);
    let l = (cx - (side - 1.0) / 2.0).round() as i64;
    let t = (cy - (side - 1.0) / 2.0).round() as i64;
    let s = side.round() as i64;
    FaceBox::ltrb(l, t, l + s - 1, t + s - 1)
}

impl ShapePredictor {
    /// The square box whose mean shape best fits `points` (least squares per axis), i.e. the box
    /// dlib would have needed to produce these landmarks. Used for tracking and re-initialisation.
    pub fn box_from_landmarks(&self, points: &[[f32; 2]]) -> FaceBox {
        let init = self.initial_shape();
        let n = init.len().min(points.len()).max(1);
        let fit = |axis: usize| {
            // points = offset + scale · init  (simple linear regression)
            let (mut si, mut sp, mut sii, mut sip) = (0f64, 0f64, 0f64, 0f64);
            for k in 0..n {
                let (i, p) = (init[k][axis] as f64, points[k][axis] as f64);
                si += i;
                sp += p;
                sii += i * i;
                sip += i * p;
            }
            let nf = n as f64;
            let var = sii - si * si / nf;
            let scale = if var.abs() > 1e-12 {
                (sip - si * sp / nf) / var
            } else {
                1.0
            };
            let offset = (sp - scale * si) / nf;
            (offset, scale)
        };
        let (ox, sx) = fit(0);
        let (oy, sy) = fit(1);
        // dlib maps x = l + u·(r − l): the span r − l is the fitted scale.
        let side = ((sx + sy) / 2.0).abs() + 1.0;
        let cx = ox + sx / 2.0;
        let cy = oy + sy / 2.0;
        square_box(cx, cy, side)
    }
}

/// One face found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedFace {
    /// The cascade's box (`None` when the box came from tracking or was given).
    pub detection: Option<Rect>,
    /// Which cascade found it, or `tracked`.
    pub detector: String,
    /// The box the predictor ran on.
    pub face_box: FaceBox,
    /// The landmarks.
    pub landmarks: Landmarks,
}

/// A face box from [`FacePipeline::detect_boxes`], before landmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoundBox<'a> {
    /// The cascade's box.
    pub detection: Rect,
    /// The calibrated (dlib-convention) box the predictor runs on.
    pub face_box: FaceBox,
    /// Which cascade found it.
    pub detector: &'a str,
}

/// Options of [`FacePipeline`].
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Cascade parameters (default OpenCV's 1.1 / 3 / 20×20).
    pub detect: DetectParams,
    /// Cascade box → dlib box mapping (default: the documented one for the cascade).
    pub calibration: BoxCalibration,
    /// Run the predictor a second time from the box fitted to the first landmarks (default false:
    /// measured against dlib on JAFFE + dlib_faces it moves the median error from 1.41 % to 1.47 %
    /// of the inter-ocular distance, so it does not pay).
    pub reinitialise: bool,
}

/// Detector + predictor, the way prep uses them.
pub struct FacePipeline {
    detector: CascadeDetector,
    predictor: ShapePredictor,
    options: PipelineOptions,
    /// Second cascade (with its calibration) tried when the first finds nothing.
    fallback: Option<(CascadeDetector, BoxCalibration)>,
}

impl FacePipeline {
    /// Builds a pipeline; pass `None` options for the defaults of this cascade.
    pub fn new(
        detector: CascadeDetector,
        predictor: ShapePredictor,
        options: Option<PipelineOptions>,
    ) -> Self {
        let options = options.unwrap_or_else(|| PipelineOptions {
            detect: DetectParams::default(),
            calibration: BoxCalibration::for_cascade(detector.name()),
            reinitialise: false,
        });
        FacePipeline {
            detector,
            predictor,
            options,
            fallback: None,
        }
    }

    /// Adds a second cascade, run only on images where the first finds no face (for example the
    /// fast LBP cascade first, the Haar cascade, which finds more small and turned faces, second).
    /// Its calibration is the documented one for its name.
    pub fn with_fallback(mut self, detector: CascadeDetector) -> Self {
        let calibration = BoxCalibration::for_cascade(detector.name());
        self.fallback = Some((detector, calibration));
        self
    }

    /// The fallback cascade, if any.
    pub fn fallback(&self) -> Option<&CascadeDetector> {
        self.fallback.as_ref().map(|(d, _)| d)
    }

    /// The shape predictor.
    pub fn predictor(&self) -> &ShapePredictor {
        &self.predictor
    }

    /// The detector.
    pub fn detector(&self) -> &CascadeDetector {
        &self.detector
    }

    /// The options in force.
    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// Landmarks for a given box, with the optional re-initialisation pass.
    pub fn landmarks_in_box(&self, img: &GrayImage, b: FaceBox) -> (FaceBox, Landmarks) {
        let first = self.predictor.predict(img, b);
        if !self.options.reinitialise {
            return (b, first);
        }
        let refit = self.predictor.box_from_landmarks(&first.precise);
        if refit.width() < 8 {
            return (b, first);
        }
        (refit, self.predictor.predict(img, refit))
    }

    /// Detects faces, largest first, with landmarks for each. `min_face` (pixels) skips the
    /// pyramid levels below that window size.
    pub fn detect(&self, img: &GrayImage, min_face: Option<i64>) -> Vec<DetectedFace> {
        self.detect_boxes(img, min_face)
            .into_iter()
            .map(|found| {
                let (face_box, landmarks) = self.landmarks_in_box(img, found.face_box);
                DetectedFace {
                    detection: Some(found.detection),
                    detector: found.detector.to_string(),
                    face_box,
                    landmarks,
                }
            })
            .collect()
    }

    /// The detection half of [`Self::detect`]: cascade boxes (the fallback cascade's when the
    /// first finds none), largest first, each with the calibrated box the predictor is to run
    /// on. For callers that batch the landmark predictions of many images.
    pub fn detect_boxes(&self, img: &GrayImage, min_face: Option<i64>) -> Vec<FoundBox<'_>> {
        let mut params = self.options.detect;
        if let Some(m) = min_face {
            params.min_size = (params.min_size.0.max(m), params.min_size.1.max(m));
        }
        let mut boxes = self.detector.detect(img, &params);
        let mut calibration = self.options.calibration;
        let mut detector = self.detector.name();
        if boxes.is_empty() {
            if let Some((fallback, cal)) = &self.fallback {
                boxes = fallback.detect(img, &params);
                calibration = *cal;
                detector = fallback.name();
            }
        }
        boxes.sort_by_key(|r| std::cmp::Reverse(r.w * r.h));
        boxes
            .into_iter()
            .map(|r| FoundBox {
                detection: r,
                face_box: calibration.apply(&r),
                detector,
            })
            .collect()
    }

    /// Tracks a face into the next frame: the box is fitted to the previous frame's landmarks.
    pub fn track(&self, img: &GrayImage, previous: &Landmarks) -> DetectedFace {
        let b = self.predictor.box_from_landmarks(&previous.precise);
        let (face_box, landmarks) = self.landmarks_in_box(img, b);
        DetectedFace {
            detection: None,
            detector: "tracked".into(),
            face_box,
            landmarks,
        }
    }
}
