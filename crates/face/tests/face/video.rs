//! Video decoding through FFmpeg: frame counts and timestamps, seeking to a frame gives the
//! frame a full decode gives at that position (H.264 with B-frames, MPEG-4 part 2 in AVI), the
//! grey plane equals that of the frame extracted to PNG and read as an image, and files that are
//! not videos, have no video stream or are truncated give errors with reasons.

use face::video::{self, FrameStream, VideoCodec, VideoWriter};
use face::{GrayConversion, GrayImage};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ffmpeg(test: &str) -> bool {
    match video::Ffmpeg::find() {
        Ok(_) => true,
        Err(e) => {
            testkit::unavailable(test, e);
            false
        }
    }
}

/// A 3-second 25 fps test pattern (every frame different: a moving pattern and a frame counter).
fn test_pattern(dir: &Path, name: &str, codec_args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=160x120:rate=25:duration=3")
        .args(codec_args)
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not write {}", out.display());
    out
}

fn all_frames(info: &video::VideoInfo) -> Vec<video::DecodedFrame> {
    FrameStream::open(info, 1, 0)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn seeking_gives_the_frame_a_full_decode_gives_in_mp4_and_avi() {
    if !ffmpeg("seeking_gives_the_frame_a_full_decode_gives_in_mp4_and_avi") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mp4 = test_pattern(
        dir.path(),
        "b-frames.mp4",
        &[
            "-c:v", "libx264", "-g", "12", "-bf", "2", "-pix_fmt", "yuv420p",
        ],
    );
    let avi = test_pattern(dir.path(), "mpeg4.avi", &["-c:v", "mpeg4", "-g", "10"]);
    for file in [mp4, avi] {
        let info = video::probe(&file).unwrap();
        assert_eq!(info.frames(), 75, "{info:?}");
        assert_eq!((info.width, info.height), (160, 120));
        assert!((info.frame_rate - 25.0).abs() < 1e-9);
        for (i, t) in info.times.iter().enumerate() {
            assert!((t - i as f64 / 25.0).abs() < 1e-6, "frame {i} at {t}");
        }
        let frames = all_frames(&info);
        assert_eq!(frames.len(), 75);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i);
        }
        // Key frames, the frames right after them, B-frames, the first and the last.
        for i in [0, 1, 2, 9, 10, 11, 12, 13, 37, 73, 74] {
            let sought = video::rgb_frame_at(&info, i).unwrap();
            assert!(sought == frames[i].rgb, "{}: frame {i}", file.display());
        }
        // Every third frame from the stream is the same as those of the full decode.
        let thirds: Vec<_> = FrameStream::open(&info, 3, 1)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(thirds.len(), 25);
        for f in &thirds {
            assert!(f.rgb == frames[f.index].rgb && f.index % 3 == 0);
            assert_eq!(f.time, info.times[f.index]);
        }
        assert!(video::rgb_frame_at(&info, 75).is_err());
        // Several frames in one process: the same frames.
        let picks = [0usize, 11, 12, 40, 74];
        let seeks: Vec<Option<f64>> = picks.iter().map(|&i| info.seek_time(i)).collect();
        let together = video::decode_frames(&file, &seeks, info.width, info.height).unwrap();
        assert_eq!(together.len(), picks.len());
        for (f, &i) in together.iter().zip(&picks) {
            assert!(
                *f == frames[i].rgb,
                "{}: frame {i} decoded with others",
                file.display()
            );
        }
    }
}

#[test]
fn a_video_frame_is_the_grey_of_the_same_frame_extracted_as_png() {
    if !ffmpeg("a_video_frame_is_the_grey_of_the_same_frame_extracted_as_png") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mp4 = test_pattern(
        dir.path(),
        "clip.mp4",
        &["-c:v", "libx264", "-g", "12", "-pix_fmt", "yuv420p"],
    );
    let info = video::probe(&mp4).unwrap();
    let png = dir.path().join("frame-20.png");
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&mp4)
        .args([
            "-vf",
            "select=eq(n\\,20)",
            "-frames:v",
            "1",
            "-pix_fmt",
            "rgb24",
        ])
        .arg(&png)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let from_png = GrayImage::open(&png, GrayConversion::PilLuma).unwrap();
    let from_video = video::gray_frame_at(&info, 20).unwrap();
    assert_eq!(from_png, from_video);
}

#[test]
fn files_that_are_not_whole_videos_give_reasons() {
    if !ffmpeg("files_that_are_not_whole_videos_give_reasons") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Not a video at all.
    let junk = dir.path().join("junk.mp4");
    std::fs::write(&junk, b"this is not a video, just some bytes".repeat(100)).unwrap();
    let e = video::probe(&junk).unwrap_err().to_string();
    assert!(e.contains("not a readable video"), "{e}");
    // An empty file.
    let empty = dir.path().join("empty.avi");
    std::fs::write(&empty, b"").unwrap();
    assert!(video::probe(&empty).is_err());
    // Sound only.
    let sound = dir.path().join("sound.mp4");
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:duration=1")
        .args(["-c:a", "aac"])
        .arg(&sound)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let e = video::probe(&sound).unwrap_err().to_string();
    assert!(e.contains("no video stream"), "{e}");
    // Truncated after the index (moov first): the probe lists every frame, decoding stops early.
    let whole = test_pattern(
        dir.path(),
        "whole.mp4",
        &[
            "-c:v",
            "libx264",
            "-g",
            "12",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = video::probe(&cut).unwrap_err().to_string();
    assert!(
        e.contains("truncated: the container lists 75 frames"),
        "{e}"
    );
    // A probe taken before the file was cut: the stream and the seek say so too.
    let mut info = video::probe(&whole).unwrap();
    std::fs::copy(&cut, &whole).unwrap();
    info.path = whole.clone();
    let results: Vec<_> = FrameStream::open(&info, 1, 1).unwrap().collect();
    let last = results.last().unwrap().as_ref().unwrap_err().to_string();
    assert!(last.contains("of 75 frames"), "{last}");
    assert!(results.iter().filter(|r| r.is_ok()).count() < 75);
    assert!(video::rgb_frame_at(&info, 74).is_err());
}

#[test]
fn written_frames_read_back_in_order() {
    if !ffmpeg("written_frames_read_back_in_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["grey.mp4", "grey.avi"] {
        let path = dir.path().join(name);
        let mut w = VideoWriter::create(&path, 64, 48, 25.0, false, VideoCodec::for_path(&path), 8)
            .unwrap();
        // Flat frames of increasing grey: lossy coding keeps a flat level within a few units.
        for k in 0..20u8 {
            w.write(&[k * 10 + 20; 64 * 48]).unwrap();
        }
        assert!(w.write(&[0; 10]).is_err(), "a frame of the wrong size");
        w.finish().unwrap();
        let info = video::probe(&path).unwrap();
        assert_eq!(info.frames(), 20);
        for (k, f) in all_frames(&info).iter().enumerate() {
            let g = video::rgb_to_gray_image(&f.rgb).unwrap();
            let mean = g.data().iter().map(|&v| v as f64).sum::<f64>() / g.data().len() as f64;
            let want = (k * 10 + 20) as f64;
            assert!(
                (mean - want).abs() < 3.0,
                "{name} frame {k}: {mean} vs {want}"
            );
        }
    }
}
