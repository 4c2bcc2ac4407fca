//! Encoding frames into a video file through `ffmpeg`.

use super::{last_line, video_error, Ffmpeg, VideoFault};
use crate::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

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
