//! CK+ label and landmark files: `Emotion/Sxxx/yyy/*_emotion.txt` (one float, `   3.0000000e+00`)
//! and `Landmarks/Sxxx/yyy/*_landmarks.txt` (68 lines of two floats).

use super::walk;
use crate::inventory::{reason, FrameSource, InputItem, Inventory};
use crate::{PrepError, Result};
use std::path::Path;

/// CK+ emotion codes 0–7.
pub const CKPLUS_CODES: [&str; 8] = [
    "neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
];

/// The class names of the paper's 7-class CK+ protocol (codes 1–7, neutral excluded), in label order.
pub const CKPLUS_CLASSES: [&str; 7] = [
    "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise",
];

/// Parses an emotion file: exactly one number, an integer code 0–7 written as a float.
pub fn parse_emotion(text: &str, file: &Path) -> Result<u8> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let [token] = tokens.as_slice() else {
        return Err(PrepError::parse(
            file,
            1,
            format!("expected one number, found {} tokens", tokens.len()),
        ));
    };
    let v: f64 = token
        .parse()
        .map_err(|_| PrepError::parse(file, 1, format!("{token:?} is not a number")))?;
    if v.fract() != 0.0 || !(0.0..=7.0).contains(&v) {
        return Err(PrepError::parse(
            file,
            1,
            format!("emotion code {v} is not an integer in 0..=7"),
        ));
    }
    Ok(v as u8)
}

/// Parses a landmarks file: 68 lines, each two finite numbers (x y), blank lines ignored.
pub fn parse_landmarks(text: &str, file: &Path) -> Result<Vec<[f32; 2]>> {
    let mut points = Vec::with_capacity(68);
    for (i, line) in text.lines().enumerate() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        let [x, y] = tokens.as_slice() else {
            return Err(PrepError::parse(
                file,
                i + 1,
                format!("expected two numbers, found {}", tokens.len()),
            ));
        };
        let num = |t: &str| -> Result<f32> {
            t.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    PrepError::parse(file, i + 1, format!("{t:?} is not a finite number"))
                })
        };
        points.push([num(x)?, num(y)?]);
    }
    if points.len() != 68 {
        return Err(PrepError::parse(
            file,
            text.lines().count().max(1),
            format!("{} points, expected 68", points.len()),
        ));
    }
    Ok(points)
}

/// Options of the CK+ reader.
#[derive(Clone, Copy)]
pub struct CkPlusOptions<'a> {
    /// Frame slots chosen from each sequence (indices into its sorted frames).
    pub frame_indices: &'a dyn Fn(usize) -> Vec<usize>,
    /// Keep neutral (code 0) as a class.
    pub include_neutral: bool,
    /// Read `Landmarks/` for the chosen frames.
    pub dataset_landmarks: bool,
}

/// Reads a CK+ tree: `cohn-kanade-images/Sxxx/yyy/*.png`, `Emotion/Sxxx/yyy/*_emotion.txt` and,
/// when asked, `Landmarks/Sxxx/yyy/*_landmarks.txt`. Every sequence is an input: labelled ones
/// become items (sample id `Sxxx/yyy`), unlabelled ones are excluded, broken ones fail with a reason.
///
/// Errors: `root` lacks `cohn-kanade-images/`.
pub fn inventory(root: &Path, opts: CkPlusOptions<'_>) -> Result<Inventory> {
    let images = root.join("cohn-kanade-images");
    if !images.is_dir() {
        return Err(PrepError::parse(
            root,
            0,
            "no cohn-kanade-images/ folder: is this the CK+ root (with Emotion/ beside it)?",
        ));
    }
    let classes: Vec<&str> = if opts.include_neutral {
        CKPLUS_CODES.to_vec()
    } else {
        CKPLUS_CLASSES.to_vec()
    };
    let mut inv = Inventory::new("ckplus", root.to_path_buf(), &classes);
    for (subject, srel) in walk::subdirs(&images, "cohn-kanade-images", "subject", &mut inv) {
        for (seq, rel) in walk::subdirs(&subject.path, &srel, "sequence", &mut inv) {
            let id = format!("{}/{}", subject.name, seq.name);
            let Some(mut frames) = walk::sequence_frames(&seq.path, &rel, &mut inv) else {
                continue;
            };
            // Frame numbers from the names when they follow the convention, so that 10 sorts after 9.
            frames.sort_by_key(|n| {
                (
                    crate::datasets::names::parse_ckplus_name(n).and_then(|i| i.frame),
                    n.clone(),
                )
            });
            let code = match read_emotion(root, &id, &mut inv, &rel) {
                Some(c) => c,
                None => continue,
            };
            let label = if opts.include_neutral {
                code as u16
            } else if code == 0 {
                inv.exclude(&rel, reason::NEUTRAL_EXCLUDED, "emotion code 0 (neutral)");
                continue;
            } else {
                code as u16 - 1
            };
            let chosen = (opts.frame_indices)(frames.len());
            let sources: Vec<FrameSource> = chosen
                .iter()
                .map(|&i| FrameSource::File {
                    path: walk::join(&rel, &frames[i]),
                    index: crate::datasets::names::parse_ckplus_name(&frames[i])
                        .and_then(|n| n.frame)
                        .unwrap_or(i as u32 + 1),
                })
                .collect();
            let landmarks = if opts.dataset_landmarks {
                match read_landmarks(root, &id, &chosen, &frames) {
                    Ok(l) => Some(l),
                    Err(detail) => {
                        inv.reject(&rel, "parse", reason::BAD_LANDMARKS, detail);
                        continue;
                    }
                }
            } else {
                None
            };
            inv.push(InputItem {
                dataset_landmarks: landmarks,
                ..InputItem::sequence(
                    id.clone(),
                    subject.name.clone(),
                    seq.name.clone(),
                    label,
                    sources,
                    rel,
                )
            });
        }
    }
    inv.finish()
        .map_err(|reason| PrepError::parse(root, 0, reason))?;
    Ok(inv)
}

/// The emotion code of sequence `id`, or `None` after recording why there is none.
fn read_emotion(root: &Path, id: &str, inv: &mut Inventory, rel: &str) -> Option<u8> {
    let dir = root.join("Emotion").join(id);
    let files: Vec<std::path::PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("_emotion.txt") && !n.starts_with('.'))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            inv.reject(
                rel,
                "parse",
                reason::UNREADABLE,
                format!("{}: {e}", dir.display()),
            );
            return None;
        }
    };
    match files.as_slice() {
        [] => {
            inv.exclude(
                rel,
                reason::UNLABELLED,
                "no Emotion file (CK+ labels only some sequences)",
            );
            None
        }
        [one] => {
            let parsed = std::fs::read(one)
                .map_err(|e| format!("{}: {e}", one.display()))
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| format!("{}: not text", one.display()))
                })
                .and_then(|t| parse_emotion(&t, one).map_err(|e| e.to_string()));
            match parsed {
                Ok(c) => Some(c),
                Err(detail) => {
                    inv.reject(rel, "parse", reason::BAD_EMOTION, detail);
                    None
                }
            }
        }
        many => {
            inv.reject(
                rel,
                "parse",
                reason::BAD_EMOTION,
                format!("{} Emotion files for one sequence", many.len()),
            );
            None
        }
    }
}

/// Landmarks of the chosen frames from `Landmarks/<id>/<frame stem>_landmarks.txt`.
fn read_landmarks(
    root: &Path,
    id: &str,
    chosen: &[usize],
    frames: &[String],
) -> std::result::Result<Vec<Vec<[f32; 2]>>, String> {
    chosen
        .iter()
        .map(|&i| {
            let stem = frames[i]
                .rsplit_once('.')
                .map(|(s, _)| s)
                .unwrap_or(&frames[i]);
            let path = root
                .join("Landmarks")
                .join(id)
                .join(format!("{stem}_landmarks.txt"));
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            parse_landmarks(&text, &path).map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> &'static Path {
        Path::new("S010_004_00000019_emotion.txt")
    }

    #[test]
    fn emotion_files() {
        assert_eq!(parse_emotion("   3.0000000e+00\n", f()).unwrap(), 3);
        assert_eq!(parse_emotion("7", f()).unwrap(), 7);
        for bad in ["", "   ", "abc", "3.5", "8.0000000e+00", "-1", "3 4", "NaN"] {
            let e = parse_emotion(bad, f()).unwrap_err().to_string();
            assert!(
                e.contains("S010_004_00000019_emotion.txt:1"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn landmark_files() {
        let good: String = (0..68)
            .map(|i| format!("   {}.5e+00   2.0e+02\n", i))
            .collect();
        let pts = parse_landmarks(&good, f()).unwrap();
        assert_eq!(pts.len(), 68);
        assert_eq!(pts[3], [3.5, 200.0]);
        let short: String = good.lines().take(67).map(|l| format!("{l}\n")).collect();
        assert!(parse_landmarks(&short, f())
            .unwrap_err()
            .to_string()
            .contains("67 points"));
        let bad = good.replacen("2.0e+02", "inf", 1);
        assert!(parse_landmarks(&bad, f())
            .unwrap_err()
            .to_string()
            .contains(":1:"));
        let three = good.replacen("2.0e+02", "2.0e+02 1", 1);
        assert!(parse_landmarks(&three, f()).is_err());
    }
}
