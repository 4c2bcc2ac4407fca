//! The bad-input catalogue: every malformed input ends as a failure row with a reason code (or
//! an exclusion, or a clear whole-file error), never a panic and never a silent drop. Fixtures are
//! generated here. Reading-level cases need no model files; image cases run the face pipeline.

use crate::common::*;
use prep::datasets::{ckplus, fer2013, folders, oulu};
use prep::inventory::{reason, Inventory};
use std::path::Path;

fn reasons(inv: &Inventory) -> Vec<String> {
    inv.rejected.iter().map(|r| r.reason.clone()).collect()
}

fn accounted(inv: &Inventory) {
    assert_eq!(
        inv.seen,
        (inv.items.len() + inv.rejected.len()) as u64,
        "{inv:?}"
    );
}

fn px(n: usize, v: &str) -> String {
    vec![v; n].join(" ")
}

fn fer(text: &str) -> Result<Inventory, String> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("fer2013.csv");
    std::fs::write(&p, text).unwrap();
    fer2013::inventory(&p, None, 3).map_err(|e| e.to_string())
}

fn fer_row(row: &str) -> Vec<String> {
    let inv = fer(&format!(
        "emotion,pixels,Usage\n{row}\n3,{},Training\n",
        px(2304, "5")
    ))
    .unwrap();
    accounted(&inv);
    assert_eq!(inv.items.len(), 1, "the good row is kept");
    reasons(&inv)
}

#[test]
fn fer2013_malformed_rows_each_get_a_reason() {
    let cases = [
        (format!("1,{},Training", px(2303, "1")), reason::BAD_PIXELS),
        (format!("1,{},Training", px(2305, "1")), reason::BAD_PIXELS),
        (
            format!("1,{} x,Training", px(2303, "1")),
            reason::BAD_PIXELS,
        ),
        (
            format!("1,{} 256,Training", px(2303, "1")),
            reason::BAD_PIXELS,
        ),
        (format!("7,{},Training", px(2304, "1")), reason::BAD_LABEL),
        (format!("x,{},Training", px(2304, "1")), reason::BAD_LABEL),
        (format!(",{},Training", px(2304, "1")), reason::BAD_LABEL),
        (format!("1,{},Testing", px(2304, "1")), reason::BAD_USAGE),
        (format!("1,{}", px(2304, "1")), reason::BAD_ROW),
        (
            format!("1,{},Training,extra", px(2304, "1")),
            reason::BAD_ROW,
        ),
        (format!("1,\"{},Training", px(2304, "1")), reason::BAD_ROW),
    ];
    for (row, want) in cases {
        assert_eq!(
            fer_row(&row),
            vec![want.to_string()],
            "{}",
            &row[..20.min(row.len())]
        );
    }
}

#[test]
fn fer2013_file_level_problems_are_clear_errors() {
    assert!(fer("").unwrap_err().contains("empty file"));
    assert!(fer("emotion,pixels,Usage\n")
        .unwrap_err()
        .contains("no data rows"));
    assert!(fer("emotion,Usage\n1,Training\n")
        .unwrap_err()
        .contains("\"pixels\""));
    let missing = fer2013::inventory(Path::new("/nonexistent/fer2013.csv"), None, 3).unwrap_err();
    assert!(missing.to_string().contains("/nonexistent/fer2013.csv"));
}

#[test]
fn fer2013_crlf_bom_quotes_and_non_utf8_lines() {
    let good = px(2304, "7");
    let inv = fer(&format!(
        "\u{feff}emotion,pixels,Usage\r\n0,\"{good}\",PublicTest\r\n\r\n6,{good},PrivateTest\r\n"
    ))
    .unwrap();
    assert_eq!((inv.items.len(), inv.rejected.len()), (2, 0));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("fer2013.csv");
    let mut bytes = format!("emotion,pixels,Usage\n1,{good},Training\n").into_bytes();
    bytes.extend_from_slice(b"2,\xff\xfe,Training\n");
    std::fs::write(&p, bytes).unwrap();
    let inv = fer2013::inventory(&p, None, 3).unwrap();
    accounted(&inv);
    assert_eq!(reasons(&inv), vec![reason::BAD_ROW]);
    assert!(inv.rejected[0].detail.contains("UTF-8"));
}

fn ck_tree(root: &Path) -> Inventory {
    let fi = |n: usize| prep::PrepConfig::default().frame_indices(n);
    ckplus::inventory(
        root,
        ckplus::CkPlusOptions {
            frame_indices: &fi,
            include_neutral: false,
            dataset_landmarks: true,
        },
    )
    .unwrap()
}

#[test]
fn ckplus_broken_sequences_each_get_a_reason() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let img =
        |s: &str, q: &str, f: u32| r.join(format!("cohn-kanade-images/{s}/{q}/{s}_{q}_{f:08}.png"));
    let emo =
        |s: &str, q: &str, f: u32| r.join(format!("Emotion/{s}/{q}/{s}_{q}_{f:08}_emotion.txt"));
    let lm = |s: &str, q: &str, f: u32| {
        r.join(format!("Landmarks/{s}/{q}/{s}_{q}_{f:08}_landmarks.txt"))
    };
    let good_lm: String = (0..68).map(|i| format!("{i}.0 {i}.5\n")).collect();
    let frame = |p: std::path::PathBuf| write(&p, b"png bytes are only read later");
    // S001/001: fine, one frame only (fills all three slots).
    frame(img("S001", "001", 1));
    write(&emo("S001", "001", 1), b"5");
    write(&lm("S001", "001", 1), good_lm.as_bytes());
    // S001/002: no frames.
    std::fs::create_dir_all(r.join("cohn-kanade-images/S001/002")).unwrap();
    write(&emo("S001", "002", 1), b"5");
    // S001/003: no Emotion file -> excluded.
    frame(img("S001", "003", 1));
    // S001/004: garbage emotion.
    frame(img("S001", "004", 1));
    write(&emo("S001", "004", 1), b"happy");
    // S001/005: two numbers.
    frame(img("S001", "005", 1));
    write(&emo("S001", "005", 1), b"3.0 4.0");
    // S001/006: 67 landmark lines.
    frame(img("S001", "006", 1));
    write(&emo("S001", "006", 1), b"2");
    write(
        &lm("S001", "006", 1),
        good_lm
            .lines()
            .take(67)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    // S001/007: two Emotion files.
    frame(img("S001", "007", 1));
    write(&emo("S001", "007", 1), b"2");
    write(&emo("S001", "007", 2), b"2");
    // S001/008: missing landmarks file.
    frame(img("S001", "008", 1));
    write(&emo("S001", "008", 1), b"2");
    // A stray file where sequences are, and a README among frames.
    write(&r.join("cohn-kanade-images/S001/notes.txt"), b"x");
    write(&r.join("cohn-kanade-images/S001/001/README"), b"x");
    let inv = ck_tree(r);
    accounted(&inv);
    assert_eq!(inv.items.len(), 1);
    assert_eq!(inv.items[0].frames.len(), 3);
    let mut got = reasons(&inv);
    got.sort();
    let mut want = vec![
        reason::NO_FRAMES,
        reason::UNLABELLED,
        reason::BAD_EMOTION,
        reason::BAD_EMOTION,
        reason::BAD_LANDMARKS,
        reason::BAD_EMOTION,
        reason::BAD_LANDMARKS,
        reason::NOT_AN_IMAGE,
        reason::NOT_AN_IMAGE,
    ];
    want.sort();
    assert_eq!(got, want);
    assert!(inv
        .rejected
        .iter()
        .any(|f| f.reason == reason::BAD_LANDMARKS && f.detail.contains("67 points")));
}

#[test]
fn oulu_unknown_emotion_folder_and_empty_sequence() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("OriginalImg/VL/Strong");
    write(&base.join("P001/Anger/000.jpeg"), b"x");
    write(&base.join("P001/Joy/000.jpeg"), b"x");
    std::fs::create_dir_all(base.join("P001/Fear")).unwrap();
    let fi = |n: usize| prep::PrepConfig::default().frame_indices(n);
    let inv = oulu::inventory(d.path(), "VL", "Strong", &fi).unwrap();
    accounted(&inv);
    assert_eq!(inv.items.len(), 1);
    let mut got = reasons(&inv);
    got.sort();
    assert_eq!(got, vec![reason::NO_FRAMES, reason::UNKNOWN_CLASS]);
    assert!(oulu::inventory(d.path(), "NI", "Dark", &fi)
        .unwrap_err()
        .to_string()
        .contains("OriginalImg/NI/Dark"));
}

#[cfg(unix)]
#[test]
fn non_utf8_names_symlink_loops_and_bad_file_names_in_class_folders() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("happy/S010_004_00000017.png"), b"x");
    write(&r.join("happy/not-a-ckplus-name.png"), b"x");
    write(
        &r.join(std::ffi::OsStr::from_bytes(b"happy/S011_\xff_1.png")),
        b"x",
    );
    std::os::unix::fs::symlink(r.join("happy/loop"), r.join("happy/loop")).unwrap();
    write(&r.join("grumpy/S012_001_00000001.png"), b"x");
    let fi = |n: usize| prep::PrepConfig::default().frame_indices(n);
    let inv = folders::inventory(
        r,
        "ckplus48",
        Some(&["happy", "sad"]),
        folders::NameStyle::CkPlus,
        &fi,
        3,
    )
    .unwrap();
    accounted(&inv);
    assert_eq!(inv.items.len(), 1);
    let mut got = reasons(&inv);
    got.sort();
    let mut want = vec![
        reason::BAD_NAME,
        reason::BAD_NAME,
        reason::UNREADABLE,
        reason::UNKNOWN_CLASS,
    ];
    want.sort();
    assert_eq!(got, want, "{:?}", inv.rejected);
}

/// Image-level cases through the whole pipeline: truncated, empty, 16-bit, RGBA, absurd declared
/// size, no face, several faces.
#[test]
fn bad_and_unusual_images_through_the_pipeline() {
    let Some(models) = models("bad_and_unusual_images_through_the_pipeline") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let caches = tempfile::tempdir().unwrap();
    let r = d.path();
    let face = frame(256, 256, 250, 0, 0, false);
    let png = |img: &face::GrayImage| {
        let mut v = Vec::new();
        image::GrayImage::from_raw(img.width() as u32, img.height() as u32, img.data().to_vec())
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
            .unwrap();
        v
    };
    let good = png(&face);
    write(&r.join("happy/ok.png"), &good);
    write(&r.join("happy/truncated.png"), &good[..good.len() / 3]);
    write(&r.join("happy/empty.png"), b"");
    // 16-bit grey and RGBA versions of the same face decode and are cached.
    let g16 = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(256, 256, |x, y| {
        image::Luma([face.at(x as usize, y as usize) as u16 * 257])
    });
    g16.save(r.join("happy/sixteen.png")).unwrap();
    let rgba = image::RgbaImage::from_fn(256, 256, |x, y| {
        let v = face.at(x as usize, y as usize);
        image::Rgba([v, v, v, 200])
    });
    rgba.save(r.join("happy/rgba.png")).unwrap();
    // A PNG header declaring 100,000 × 100,000 pixels.
    let mut huge = good.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    write(&r.join("happy/huge.png"), &huge);
    // No face: a flat grey image.
    write(
        &r.join("sad/blank.png"),
        &png(&face::GrayImage::filled(256, 256, 128)),
    );
    // Two faces side by side: the larger one is used.
    let mut two = face::GrayImage::filled(600, 300, 90);
    let (a, b) = (
        frame(300, 300, 290, 0, 0, false),
        frame(200, 200, 190, 0, 0, true),
    );
    for y in 0..300 {
        for x in 0..300 {
            two.data_mut()[y * 600 + x] = a.at(x, y);
        }
    }
    for y in 0..200 {
        for x in 0..200 {
            two.data_mut()[(y + 50) * 600 + 380 + x] = b.at(x, y);
        }
    }
    write(&r.join("sad/two.png"), &png(&two));
    let mut req = request(prep::DatasetKind::Folders, r, caches.path(), models);
    req.config.folds = 2;
    let out = prep::build(&req, &prep::build::NoProgress).unwrap();
    let s = &out.summary;
    assert!(s.adds_up(), "{s:?}");
    assert_eq!(s.seen, 8);
    assert_eq!(s.cached, 4, "{s:?}");
    assert_eq!(s.failed.get(reason::DECODE_ERROR), Some(&3), "{s:?}");
    assert_eq!(s.failed.get(reason::NO_FACE), Some(&1), "{s:?}");
    let cache = shard::Cache::open(&out.dir).unwrap();
    let two = cache
        .iter()
        .map(|r| r.unwrap())
        .find(|r| r.meta.sample_id == "sad/two")
        .unwrap();
    // The larger face (left) was chosen: its eyes lie in the left half.
    assert!(two.meta.landmarks[0][36][0] < 300.0);
    // --strict and the failure-rate limit see these failures.
    assert!(s.failure_rate() > 0.05);
}
