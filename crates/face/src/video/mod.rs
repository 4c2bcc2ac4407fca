//! Video input and output through FFmpeg's command-line tools (`ffprobe`, `ffmpeg`).
//!
//! Why the CLI and not the libraries: linking libavformat/libavcodec needs their development
//! headers and bindings generated for one FFmpeg version, while the CLI reads every container and
//! codec the installed FFmpeg reads with one stable interface (4.x to 7.x); and a decoder that
//! crashes on a corrupt file takes down a child process, which becomes a failure row, not the
//! whole build. The cost is one process per probe or seek (tens of milliseconds) and a pipe copy
//! of the decoded pixels, small against face detection.
//!
//! Frames are decoded as RGB (`rgb24`) and made grey with the same rule as image files
//! ([`GrayConversion::PilLuma`]), so a frame extracted to PNG and read as an image gives the
//! same grey plane as the frame read here. A frame's index is its position among the video
//! stream's packets sorted by presentation time (what `ffprobe` lists); its timestamp is that
//! presentation time in seconds from the container's start. Seeking to frame `i` asks FFmpeg for
//! the first frame at or after the midpoint between frames `i − 1` and `i` (accurate seeking
//! decodes from the previous key frame and drops what comes before), so the `k` frames of a
//! sample cost `k` short decodes, not the whole clip.

use crate::{FaceError, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod decode;
mod write;
pub use decode::{
    decode_frame, decode_frames, gray_frame_at, rgb_frame_at, rgb_to_gray_image, DecodedFrame,
    FrameStream,
};
pub use write::{VideoCodec, VideoWriter};

/// File extensions read as videos (case-insensitive).
pub const VIDEO_EXTENSIONS: [&str; 12] = [
    "mp4", "avi", "mkv", "mov", "webm", "m4v", "mpg", "mpeg", "wmv", "flv", "3gp", "ogv",
];

/// Whether a file name has one of [`VIDEO_EXTENSIONS`].
pub fn is_video_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    VIDEO_EXTENSIONS
        .iter()
        .any(|e| lower.rsplit_once('.').is_some_and(|(_, x)| x == *e))
}

/// The FFmpeg tools found on `PATH`, and the version `ffmpeg -version` reports.
#[derive(Debug, Clone)]
pub struct Ffmpeg {
    /// Version string (`5.1.9-0+deb12u1`).
    pub version: String,
}

/// How a video's decoded frames become the grey planes the face pipeline reads, recorded in
/// cache keys next to [`Ffmpeg::version`].
pub const VIDEO_DECODING: &str =
    "ffmpeg rgb24 -> PIL luma; frame i = i-th packet by pts; seek to midpoint(t[i-1], t[i])";

impl Ffmpeg {
    /// Finds `ffmpeg` and `ffprobe` (once per process).
    ///
    /// Errors: [`FaceError::Video`] when either is missing (install FFmpeg; `make setup` does).
    pub fn find() -> Result<&'static Ffmpeg> {
        static FOUND: OnceLock<std::result::Result<Ffmpeg, String>> = OnceLock::new();
        FOUND
            .get_or_init(|| {
                let missing = |tool: &str, e: String| {
                    format!(
                        "{tool} not found or not runnable ({e}): install FFmpeg (Debian: apt-get \
                         install ffmpeg; `make setup` does)"
                    )
                };
                let out = Command::new("ffmpeg")
                    .args(["-hide_banner", "-version"])
                    .output()
                    .map_err(|e| missing("ffmpeg", e.to_string()))?;
                Command::new("ffprobe")
                    .arg("-version")
                    .output()
                    .map_err(|e| missing("ffprobe", e.to_string()))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let version = text
                    .split_whitespace()
                    .nth(2)
                    .filter(|_| text.starts_with("ffmpeg version"))
                    .ok_or_else(|| missing("ffmpeg", "no version line".into()))?
                    .to_string();
                Ok(Ffmpeg { version })
            })
            .as_ref()
            .map_err(|reason| FaceError::Video {
                path: PathBuf::from("ffmpeg"),
                fault: VideoFault::FfmpegMissing,
                reason: reason.clone(),
            })
    }
}

/// What `ffprobe` says about a video's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The file.
    pub path: PathBuf,
    /// Codec name (`h264`, `mpeg4`, …).
    pub codec: String,
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Average frame rate (frames per second; 0 when the container does not say).
    pub frame_rate: f64,
    /// Presentation time of each frame, seconds from the container's start, ascending.
    pub times: Vec<f64>,
}

impl VideoInfo {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.times.len()
    }

    /// Bytes of one RGB frame.
    pub fn rgb_frame_bytes(&self) -> usize {
        self.width * self.height * 3
    }
}

/// The kinds of video failure, each with the reason code of failure rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFault {
    /// `ffmpeg`/`ffprobe` are not installed.
    FfmpegMissing,
    /// Not a container FFmpeg reads (corrupt, empty, cut before its index).
    NotAVideo,
    /// A container without a video stream (sound only).
    NoVideoStream,
    /// Fewer frames in the file, or decoded, than the container lists.
    Truncated,
    /// The decoder failed or gave no frame.
    Decode,
}

impl VideoFault {
    /// The reason code of failure rows: `ffmpeg_missing`, `not_a_video`, `no_video_stream`,
    /// `truncated`, `decode_error`.
    pub fn code(self) -> &'static str {
        match self {
            VideoFault::FfmpegMissing => "ffmpeg_missing",
            VideoFault::NotAVideo => "not_a_video",
            VideoFault::NoVideoStream => "no_video_stream",
            VideoFault::Truncated => "truncated",
            VideoFault::Decode => "decode_error",
        }
    }
}

fn video_error(path: &Path, fault: VideoFault, reason: impl Into<String>) -> FaceError {
    FaceError::Video {
        path: path.to_path_buf(),
        fault,
        reason: reason.into(),
    }
}

/// The last non-empty line FFmpeg wrote to stderr, as a reason.
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

fn parse_rational(s: &str) -> Option<f64> {
    match s.split_once('/') {
        Some((n, d)) => {
            let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
            (d != 0.0).then_some(n / d)
        }
        None => s.parse().ok(),
    }
}

/// Probes `path`: its first video stream and the timestamps of its frames (demuxing only, no
/// decoding).
///
/// Errors: [`FaceError::Video`] when FFmpeg is missing, the file is not a container FFmpeg
/// reads (corrupt, truncated before its index), has no video stream, or lists no frames.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    Ffmpeg::find()?;
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "format=start_time:stream=codec_name,width,height,avg_frame_rate,time_base,nb_frames:packet=pts,dts",
            "-of",
            "compact",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| video_error(path, VideoFault::FfmpegMissing, format!("running ffprobe: {e}")))?;
    if !out.status.success() {
        return Err(video_error(
            path,
            VideoFault::NotAVideo,
            format!("not a readable video: {}", last_line(&out.stderr)),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut stream: Option<Vec<(String, String)>> = None;
    let mut format_start = 0.0;
    let mut ticks: Vec<Option<i64>> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split('|');
        let section = fields.next().unwrap_or("");
        let kv: Vec<(String, String)> = fields
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| kv.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match section {
            "packet" => {
                let t = get("pts")
                    .and_then(|v| v.parse().ok())
                    .or_else(|| get("dts").and_then(|v| v.parse().ok()));
                ticks.push(t);
            }
            "stream" => stream = Some(kv),
            "format" => {
                format_start = get("start_time")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            }
            _ => {}
        }
    }
    let Some(stream) = stream else {
        return Err(video_error(
            path,
            VideoFault::NoVideoStream,
            "no video stream",
        ));
    };
    let get = |k: &str| {
        stream
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let width: usize = get("width").parse().unwrap_or(0);
    let height: usize = get("height").parse().unwrap_or(0);
    if width == 0 || height == 0 {
        return Err(video_error(
            path,
            VideoFault::NotAVideo,
            "video stream without a frame size",
        ));
    }
    let frame_rate = parse_rational(get("avg_frame_rate"))
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(0.0);
    let time_base = parse_rational(get("time_base")).unwrap_or(0.0);
    if ticks.is_empty() {
        return Err(video_error(
            path,
            VideoFault::NoVideoStream,
            "the video stream has no frames",
        ));
    }
    // A file cut after its index (an MP4 with the index first, an AVI's header) lists more
    // frames than the packets that are in it.
    if let Ok(listed) = get("nb_frames").parse::<usize>() {
        if listed > ticks.len() {
            return Err(video_error(
                path,
                VideoFault::Truncated,
                format!(
                    "truncated: the container lists {listed} frames, {} are in the file ({})",
                    ticks.len(),
                    last_line(&out.stderr)
                ),
            ));
        }
    }
    let mut times: Vec<f64> = if time_base > 0.0 && ticks.iter().all(Option::is_some) {
        ticks
            .iter()
            .map(|t| t.unwrap_or(0) as f64 * time_base - format_start)
            .collect()
    } else {
        // No timestamps in the container: frames are evenly spaced at the frame rate.
        let rate = if frame_rate > 0.0 { frame_rate } else { 25.0 };
        (0..ticks.len()).map(|i| i as f64 / rate).collect()
    };
    times.sort_by(f64::total_cmp);
    Ok(VideoInfo {
        path: path.to_path_buf(),
        codec: get("codec_name").to_string(),
        width,
        height,
        frame_rate,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn video_names() {
        assert!(is_video_name("clip.MP4"));
        assert!(is_video_name("a.b.avi"));
        assert!(!is_video_name("mp4"));
        assert!(!is_video_name("frame.png"));
    }

    #[test]
    fn rationals() {
        assert_eq!(parse_rational("25/1"), Some(25.0));
        assert_eq!(parse_rational("0/0"), None);
        assert_eq!(parse_rational("1/12800"), Some(1.0 / 12800.0));
    }

    #[test]
    fn codec_by_extension() {
        assert_eq!(VideoCodec::for_path(Path::new("a.AVI")), VideoCodec::Mpeg4);
        assert_eq!(VideoCodec::for_path(Path::new("a.mp4")), VideoCodec::H264);
    }
}
