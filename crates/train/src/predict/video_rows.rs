//! What `train predict` gives for a video: one row per processed frame, and the video's result.

/// One processed frame: OpenFace's `frame` (1-based) and `timestamp` (seconds), whether a face
/// was found (`success`), its box, landmarks and the window's class probabilities.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FrameRow {
    /// Frame number, 1-based as OpenFace counts (the video's frame index + 1).
    pub frame: usize,
    /// Presentation time in seconds from the start of the video.
    pub timestamp: f64,
    /// A face was found in this frame.
    pub success: bool,
    /// The box the landmarks were predicted in (left, top, right, bottom; inclusive pixels).
    pub face_box: Option<[i64; 4]>,
    /// What found it (the cascade's name; `whole_frame` for whole-image recipes).
    pub detector: Option<String>,
    /// The 68 landmarks (x, y pixels, dlib's order).
    pub landmarks: Option<Vec<[f32; 2]>>,
    /// Frames with a face in the window that was classified (0 without a face).
    pub window: usize,
    /// Class probabilities, in class order (empty without a face).
    pub probabilities: Vec<f64>,
    /// The most probable class.
    pub class: Option<String>,
    /// Why this frame has no face or no probabilities.
    pub error: Option<String>,
}

/// What a video gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoPrediction {
    /// The video's path.
    pub input: String,
    /// Frames in the video (as probed; 0 when it could not be read).
    pub frames: usize,
    /// Its frame rate.
    pub frame_rate: f64,
    /// Frame size.
    pub size: [usize; 2],
    /// Every processed frame, in order.
    pub rows: Vec<FrameRow>,
    /// Why the video, or its end, could not be read (then the rows are those before it).
    pub error: Option<String>,
    /// Wall-clock seconds spent on it.
    pub seconds: f64,
}

impl VideoPrediction {
    /// The class most frames with a face were given, and how many frames had a face.
    pub fn majority(&self, classes: &[String]) -> (Option<String>, usize) {
        let mut counts = vec![0usize; classes.len()];
        let mut faced = 0;
        for r in &self.rows {
            if let Some(c) = &r.class {
                faced += 1;
                if let Some(i) = classes.iter().position(|x| x == c) {
                    counts[i] += 1;
                }
            }
        }
        let best = (0..classes.len())
            .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
            .filter(|&i| counts[i] > 0)
            .map(|i| classes[i].clone());
        (best, faced)
    }
}
