//! Decoding: one frame by seeking, the frames of a sample in one process, every (N-th) frame in
//! order, and RGB to grey by the image files' rule.

use super::{last_line, video_error, VideoFault, VideoInfo};
use crate::{rgb_to_gray, FaceError, GrayConversion, GrayImage, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

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
    decode_frames(path, &[seek], width, height)?
        .pop()
        .ok_or_else(|| video_error(path, VideoFault::Decode, "no frame decoded"))
}

/// Several frames of one video in one `ffmpeg` process: one input per seek time, each decoded
/// from the key frame before it (input seeking; FFmpeg drops the frames before the time), the
/// first frame of each kept and the frames concatenated. One frame costs one process start-up
/// (tens of milliseconds, most of a short clip's cost), so a sample's frames share one.
///
/// Errors: [`FaceError::Video`] for a decoder failure or fewer frames than seek times.
pub fn decode_frames(
    path: &Path,
    seeks: &[Option<f64>],
    width: usize,
    height: usize,
) -> Result<Vec<image::RgbImage>> {
    if seeks.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-threads", "1"]);
    for seek in seeks {
        if let Some(t) = seek {
            cmd.args(["-ss", &format!("{t:.6}")]);
        }
        cmd.arg("-i").arg(path);
    }
    if seeks.len() == 1 {
        cmd.args(["-map", "0:v:0", "-frames:v", "1"]);
    } else {
        let mut graph = String::new();
        for k in 0..seeks.len() {
            graph.push_str(&format!(
                "[{k}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS[f{k}];"
            ));
        }
        for k in 0..seeks.len() {
            graph.push_str(&format!("[f{k}]"));
        }
        graph.push_str(&format!("concat=n={}:v=1:a=0[out]", seeks.len()));
        cmd.args(["-filter_complex", &graph, "-map", "[out]"])
            .args(["-fps_mode", "passthrough"]);
    }
    cmd.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| {
        video_error(
            path,
            VideoFault::FfmpegMissing,
            format!("running ffmpeg: {e}"),
        )
    })?;
    let frame = width * height * 3;
    if frame == 0 || out.stdout.len() != frame * seeks.len() {
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
