//! CK+ label and landmark files: `Emotion/Sxxx/yyy/*_emotion.txt` (one float, `   3.0000000e+00`)
//! and `Landmarks/Sxxx/yyy/*_landmarks.txt` (68 lines of two floats).

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
