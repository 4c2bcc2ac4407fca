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

use crate::{rgb_to_gray, FaceError, GrayConversion, GrayImage, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

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

impl VideoInfo {
    /// The time FFmpeg is asked to seek to for frame `index`: the midpoint between it and the
    /// frame before, so that rounding of either timestamp cannot select a neighbour. `None` for
    /// frame 0 (decoded from the start, without seeking) and for indices past the end.
    pub fn seek_time(&self, index: usize) -> Option<f64> {
        (index > 0 && index < self.times.len())
            .then(|| 0.5 * (self.times[index - 1] + self.times[index]))
    }
}

/// Frame `index` of a probed video as RGB, decoding only from the key frame before it.
///
/// Errors: [`FaceError::Video`] for an index past the end, a decoder failure, or a frame that
/// does not come (a file truncated after its index was written).
pub fn rgb_frame_at(info: &VideoInfo, index: usize) -> Result<image::RgbImage> {
    if index >= info.frames() {
        return Err(video_error(
            &info.path,
            VideoFault::Decode,
            format!("frame {index} asked of a video of {} frames", info.frames()),
        ));
    }
    decode_frame(&info.path, info.seek_time(index), info.width, info.height).map_err(|e| match e {
        FaceError::Video {
            path,
            fault,
            reason,
        } => FaceError::Video {
            path,
            fault,
            reason: format!("frame {index} of {}: {reason}", info.frames()),
        },
        other => other,
    })
}

/// The first frame at or after `seek` seconds (the first frame when `None`) of a video whose
/// frames are `width`×`height`, as RGB: what [`rgb_frame_at`] does once the probe is known, for
/// callers that kept the seek time and size instead of the probe (`prep`'s inventory).
///
/// Errors: [`FaceError::Video`] for a decoder failure or a frame that does not come.
pub fn decode_frame(
    path: &Path,
    seek: Option<f64>,
    width: usize,
    height: usize,
) -> Result<image::RgbImage> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-threads", "1"]);
    if let Some(t) = seek {
        cmd.args(["-ss", &format!("{t:.6}")]);
    }
    cmd.arg("-i").arg(path).args([
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        video_error(
            path,
            VideoFault::FfmpegMissing,
            format!("running ffmpeg: {e}"),
        )
    })?;
    if out.stdout.len() != width * height * 3 {
        let why = if out.status.success() {
            "no frame decoded (truncated or corrupt)".to_string()
        } else {
            last_line(&out.stderr)
        };
        return Err(video_error(path, VideoFault::Decode, why));
    }
    image::RgbImage::from_raw(width as u32, height as u32, out.stdout)
        .ok_or_else(|| video_error(path, VideoFault::Decode, "frame size mismatch"))
}

/// Several frames of one video in one `ffmpeg` process: one input per seek time (each decoded
/// from the key frame before it, as [`decode_frame`] does), the first frame of each kept and the
/// frames concatenated. Equal to [`decode_frame`] per seek time, without paying FFmpeg's start-up
/// (tens of milliseconds, most of a short clip's cost) once per frame.
///
/// Errors: [`FaceError::Video`] for a decoder failure or fewer frames than seek times.
pub fn decode_frames(
    path: &Path,
    seeks: &[Option<f64>],
    width: usize,
    height: usize,
) -> Result<Vec<image::RgbImage>> {
    if seeks.len() <= 1 {
        return seeks
            .iter()
            .map(|s| decode_frame(path, *s, width, height))
            .collect();
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-threads", "1"]);
    let mut graph = String::new();
    for (k, seek) in seeks.iter().enumerate() {
        if let Some(t) = seek {
            cmd.args(["-ss", &format!("{t:.6}")]);
        }
        cmd.arg("-i").arg(path);
        graph.push_str(&format!(
            "[{k}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS[f{k}];"
        ));
    }
    for k in 0..seeks.len() {
        graph.push_str(&format!("[f{k}]"));
    }
    graph.push_str(&format!("concat=n={}:v=1:a=0[out]", seeks.len()));
    cmd.args([
        "-filter_complex",
        &graph,
        "-map",
        "[out]",
        "-fps_mode",
        "passthrough",
    ])
    .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        video_error(
            path,
            VideoFault::FfmpegMissing,
            format!("running ffmpeg: {e}"),
        )
    })?;
    let frame = width * height * 3;
    if out.stdout.len() != frame * seeks.len() {
        let why = if out.status.success() {
            format!(
                "{} of {} frames decoded (truncated or corrupt)",
                out.stdout.len() / frame.max(1),
                seeks.len()
            )
        } else {
            last_line(&out.stderr)
        };
        return Err(video_error(path, VideoFault::Decode, why));
    }
    out.stdout
        .chunks_exact(frame)
        .map(|c| {
            image::RgbImage::from_raw(width as u32, height as u32, c.to_vec())
                .ok_or_else(|| video_error(path, VideoFault::Decode, "frame size mismatch"))
        })
        .collect()
}

/// An RGB frame as grey, by [`GrayConversion::PilLuma`] (what image files get).
///
/// Errors: [`FaceError::BadImage`] for an image without pixels.
pub fn rgb_to_gray_image(rgb: &image::RgbImage) -> Result<GrayImage> {
    let data: Vec<u8> = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| rgb_to_gray(p[0], p[1], p[2], GrayConversion::PilLuma))
        .collect();
    GrayImage::new(rgb.width() as usize, rgb.height() as usize, data)
}

/// Frame `index` of a probed video as grey ([`rgb_frame_at`], then PIL's luma).
///
/// Errors: as [`rgb_frame_at`].
pub fn gray_frame_at(info: &VideoInfo, index: usize) -> Result<GrayImage> {
    rgb_to_gray_image(&rgb_frame_at(info, index)?)
}

/// One decoded frame of a [`FrameStream`].
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    /// Its index in the video (0-based, see the module notes).
    pub index: usize,
    /// Its presentation time, seconds.
    pub time: f64,
    /// Its pixels.
    pub rgb: image::RgbImage,
}

/// Every `every`-th frame of a video, decoded by one `ffmpeg` process in order.
pub struct FrameStream {
    info: VideoInfo,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    every: usize,
    next: usize,
    done: bool,
}

impl FrameStream {
    /// Starts decoding `info`'s video; `every` ≥ 1 keeps frames 0, every, 2·every, …;
    /// `threads` is FFmpeg's decoder thread count (0 = FFmpeg's choice).
    ///
    /// Errors: [`FaceError::Video`] when `ffmpeg` does not start.
    pub fn open(info: &VideoInfo, every: usize, threads: usize) -> Result<FrameStream> {
        let every = every.max(1);
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-nostdin", "-v", "error", "-threads", &threads.to_string()])
            .arg("-i")
            .arg(&info.path)
            .args(["-map", "0:v:0", "-fps_mode", "passthrough"]);
        if every > 1 {
            cmd.args(["-vf", &format!("select=not(mod(n\\,{every}))")]);
        }
        cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                video_error(
                    &info.path,
                    VideoFault::FfmpegMissing,
                    format!("running ffmpeg: {e}"),
                )
            })?;
        let stdout = child.stdout.take().ok_or_else(|| {
            video_error(
                &info.path,
                VideoFault::FfmpegMissing,
                "ffmpeg without stdout",
            )
        })?;
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.read_to_end(&mut buf);
                buf
            })
        });
        Ok(FrameStream {
            info: info.clone(),
            child,
            stdout,
            stderr,
            every,
            next: 0,
            done: false,
        })
    }

    /// Number of frames the stream yields when the video decodes completely.
    pub fn expected(&self) -> usize {
        self.info.frames().div_ceil(self.every)
    }

    fn finish(&mut self) -> Option<Result<DecodedFrame>> {
        self.done = true;
        let status = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let decoded = self.next;
        let expected = self.expected();
        let failed = !status.as_ref().is_ok_and(|s| s.success());
        if decoded < expected || failed {
            let why = if stderr.is_empty() {
                "truncated or corrupt".to_string()
            } else {
                last_line(&stderr)
            };
            return Some(Err(video_error(
                &self.info.path,
                VideoFault::Truncated,
                format!("decoded {decoded} of {expected} frames: {why}"),
            )));
        }
        None
    }
}

impl Iterator for FrameStream {
    type Item = Result<DecodedFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = vec![0u8; self.info.rgb_frame_bytes()];
        match self.stdout.read_exact(&mut buf) {
            Ok(()) => {}
            Err(_) => return self.finish(),
        }
        let index = self.next * self.every;
        self.next += 1;
        if index >= self.info.frames() {
            // More frames than packets: the probe and the decoder disagree; stop reading.
            let _ = self.child.kill();
            self.done = true;
            let _ = self.child.wait();
            return Some(Err(video_error(
                &self.info.path,
                VideoFault::Decode,
                format!(
                    "the decoder gives more frames than the {} packets listed",
                    self.info.frames()
                ),
            )));
        }
        let time = self.info.times[index];
        let rgb = image::RgbImage::from_raw(self.info.width as u32, self.info.height as u32, buf)?;
        Some(Ok(DecodedFrame { index, time, rgb }))
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How [`VideoWriter`] encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (libx264, yuv420p, CRF 18, two B-frames), for `.mp4`/`.mkv`/`.mov`.
    H264,
    /// MPEG-4 part 2 (FFmpeg's encoder, quality 3), the codec of AFEW's `.avi` files.
    Mpeg4,
}

impl VideoCodec {
    /// The codec for a file name: MPEG-4 part 2 for `.avi`, H.264 otherwise.
    pub fn for_path(path: &Path) -> VideoCodec {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("avi") => VideoCodec::Mpeg4,
            _ => VideoCodec::H264,
        }
    }
}

/// Writes frames to a video file through one `ffmpeg` process (the annotated video of
/// `train predict`, the synthetic clips of `prep synth`).
pub struct VideoWriter {
    path: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    frame_bytes: usize,
}

impl VideoWriter {
    /// Starts an encoder for `width`×`height` frames at `fps` of `rgb` (3 bytes per pixel) or grey
    /// (1 byte) pixels, with a key frame at least every `gop` frames.
    ///
    /// Errors: [`FaceError::Video`] when `ffmpeg` does not start.
    pub fn create(
        path: &Path,
        width: usize,
        height: usize,
        fps: f64,
        rgb: bool,
        codec: VideoCodec,
        gop: usize,
    ) -> Result<VideoWriter> {
        Ffmpeg::find()?;
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt",
        ])
        .arg(if rgb { "rgb24" } else { "gray" })
        .args(["-s", &format!("{width}x{height}"), "-r", &format!("{fps}")])
        .args(["-i", "-", "-g", &gop.max(1).to_string()]);
        match codec {
            VideoCodec::H264 => cmd.args([
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-bf", "2", "-pix_fmt",
                "yuv420p",
            ]),
            VideoCodec::Mpeg4 => cmd.args(["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"]),
        };
        // Deterministic output: no encoder threads racing, no muxer date/encoder tags.
        cmd.args([
            "-threads",
            "1",
            "-fflags",
            "+bitexact",
            "-flags",
            "+bitexact",
        ]);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["mp4", "mov", "m4v"]
            .iter()
            .any(|e| ext.eq_ignore_ascii_case(e))
        {
            // The index first, as streaming copies have it (a cut file then lists its frames).
            cmd.args(["-movflags", "+faststart"]);
        }
        cmd.arg(path);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                video_error(
                    path,
                    VideoFault::FfmpegMissing,
                    format!("running ffmpeg: {e}"),
                )
            })?;
        let stdin = child.stdin.take();
        Ok(VideoWriter {
            path: path.to_path_buf(),
            child,
            stdin,
            frame_bytes: width * height * if rgb { 3 } else { 1 },
        })
    }

    /// Appends one frame (row-major pixels of the size and format given to `create`).
    ///
    /// Errors: [`FaceError::Video`] for a wrong size or an encoder that stopped.
    pub fn write(&mut self, pixels: &[u8]) -> Result<()> {
        if pixels.len() != self.frame_bytes {
            return Err(video_error(
                &self.path,
                VideoFault::Decode,
                format!(
                    "frame of {} bytes, the writer takes {}",
                    pixels.len(),
                    self.frame_bytes
                ),
            ));
        }
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            video_error(&self.path, VideoFault::Decode, "writer already finished")
        })?;
        stdin.write_all(pixels).map_err(|e| {
            video_error(
                &self.path,
                VideoFault::Decode,
                format!("ffmpeg stopped: {e}"),
            )
        })
    }

    /// Closes the input and waits for the encoder.
    ///
    /// Errors: [`FaceError::Video`] when the encoder fails.
    pub fn finish(self) -> Result<()> {
        let VideoWriter {
            path, child, stdin, ..
        } = self;
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| {
            video_error(
                &path,
                VideoFault::Decode,
                format!("waiting for ffmpeg: {e}"),
            )
        })?;
        if !out.status.success() {
            return Err(video_error(
                &path,
                VideoFault::Decode,
                format!("encoding failed: {}", last_line(&out.stderr)),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
