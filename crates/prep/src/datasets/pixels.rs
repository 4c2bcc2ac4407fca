//! FER2013-style pixel lists (`"70 80 82 …"`, one grey image per csv row): parsed at inventory
//! time and again from the row's offset when the frame is decoded.

use super::csv::csv_fields;
use crate::inventory::CsvPixels;

/// Parses FER2013's space-separated pixel list: exactly `n` integers 0–255.
///
/// Rows are parsed at inventory time and again whenever their frame is decoded, so the common
/// token (1–3 digits) is read byte by byte; anything else goes through `str::parse`, which gives
/// the error its wording.
pub fn parse_pixels(text: &str, n: usize) -> std::result::Result<Vec<u8>, String> {
    if let Some(pixels) = parse_plain_pixels(text.as_bytes(), n) {
        return Ok(pixels);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        let mut v = 0u32;
        let mut plain = true;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            let b = bytes[i];
            plain &= b.is_ascii_digit() && i - start < 3;
            v = v.wrapping_mul(10).wrapping_add(b.wrapping_sub(b'0') as u32);
            i += 1;
        }
        if out.len() == n {
            let extra = text[start..].split_ascii_whitespace().count();
            return Err(format!("{} values, expected {n}", n + extra));
        }
        if plain && v <= 255 {
            out.push(v as u8);
            continue;
        }
        // Token boundaries are ASCII whitespace, so `start..i` is a char boundary range.
        let tok = &text[start..i];
        let v: u32 = tok
            .parse()
            .map_err(|_| format!("pixel {} is {tok:?}, not an integer", out.len()))?;
        if v > 255 {
            return Err(format!("pixel {} is {v}, above 255", out.len()));
        }
        out.push(v as u8);
    }
    if out.len() != n {
        return Err(format!("{} values, expected {n}", out.len()));
    }
    Ok(out)
}

/// The form every row of the distributed FER2013 csv has, read with the fewest checks: exactly
/// `n` tokens of 1–3 ASCII digits (value ≤ 255) separated by single spaces, nothing before or
/// after. `None` for anything else, errors included, which [`parse_pixels`] then reads token by
/// token (and words the error); the two agree on every text this accepts.
fn parse_plain_pixels(bytes: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    loop {
        let first = bytes.get(i)?.wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        let mut v = first as u32;
        i += 1;
        for _ in 0..2 {
            match bytes.get(i) {
                Some(&b) if b.is_ascii_digit() => {
                    v = v * 10 + (b - b'0') as u32;
                    i += 1;
                }
                _ => break,
            }
        }
        if v > 255 || out.len() == n {
            return None;
        }
        out.push(v as u8);
        match bytes.get(i) {
            None => return (out.len() == n).then_some(out),
            Some(b' ') => i += 1,
            // A fourth digit, another separator, a stray character: the careful reading.
            Some(_) => return None,
        }
    }
}

/// Reads the pixels of the csv line at `offset` (`len` bytes) of `file` again, checking them as
/// the inventory did. Errors: the detail (unreadable file, changed line, bad pixels).
pub fn read_csv_pixels(
    file: &CsvPixels,
    offset: u64,
    len: u32,
) -> std::result::Result<face::GrayImage, String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(&file.path).map_err(|e| format!("{}: {e}", file.path.display()))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| format!("{} at byte {offset}: {e}", file.path.display()))?;
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    let text = std::str::from_utf8(&buf).map_err(|_| "line is not UTF-8".to_string())?;
    let changed = |n: usize| {
        format!(
            "{n} fields at byte {offset}, the header has {} (the file changed during the build?)",
            file.columns
        )
    };
    let fields = csv_fields(text)?;
    if fields.len() != file.columns {
        return Err(changed(fields.len()));
    }
    let px = parse_pixels(&fields[file.column], file.width * file.height)?;
    face::GrayImage::new(file.width, file.height, px).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_lists() {
        assert_eq!(parse_pixels("0 255  7", 3).unwrap(), vec![0, 255, 7]);
        assert!(parse_pixels("0 256 7", 3)
            .unwrap_err()
            .contains("above 255"));
        assert!(parse_pixels("0 1", 3).unwrap_err().contains("2 values"));
        assert!(parse_pixels("0 1 2 3", 3).unwrap_err().contains("4 values"));
        assert!(parse_pixels("0 x 2", 3).unwrap_err().contains("\"x\""));
        assert!(parse_pixels("0 -1 2", 3).is_err());
        // The byte-wise fast path and str::parse agree on every token shape.
        assert_eq!(
            parse_pixels("007 +5 255\t\n1", 4).unwrap(),
            vec![7, 5, 255, 1]
        );
        assert!(parse_pixels("0 1000 2", 3)
            .unwrap_err()
            .contains("pixel 1 is 1000, above 255"));
        assert!(parse_pixels("0 99999999999 2", 3)
            .unwrap_err()
            .contains("not an integer"));
        assert!(parse_pixels("0 1é 2", 3).unwrap_err().contains("\"1é\""));
    }

    /// The fast reading at its edges: one, two and three digits, 255 and 256, leading zeros,
    /// a fourth digit, and separators other than one space.
    #[test]
    fn plain_pixel_reading_at_its_edges() {
        for v in ["0", "9", "10", "99", "100", "199", "255", "007", "000"] {
            let text = format!("1 {v} 2");
            let want = vec![1, v.parse::<u8>().unwrap(), 2];
            assert_eq!(
                parse_plain_pixels(text.as_bytes(), 3),
                Some(want.clone()),
                "{text}"
            );
            assert_eq!(parse_pixels(&text, 3), Ok(want));
        }
        for text in [
            "1 256 2", "1 999 2", "1 0255 2", "1  2 3", " 1 2 3", "1 2 3 ", "1\t2 3",
        ] {
            assert_eq!(parse_plain_pixels(text.as_bytes(), 3), None, "{text:?}");
        }
        assert!(parse_pixels("1 256 2", 3)
            .unwrap_err()
            .contains("above 255"));
        // Leading or doubled spaces are still pixels, through the careful reading.
        assert_eq!(parse_pixels(" 1  2 3 ", 3), Ok(vec![1, 2, 3]));
        assert_eq!(parse_plain_pixels(b"1 2 3", 2), None);
        assert_eq!(parse_plain_pixels(b"1 2 3", 4), None);
    }

    proptest::proptest! {
        /// The distributed form (single spaces), sometimes with one token damaged or a wrong
        /// count: the fast reading gives what the general one gives.
        #[test]
        fn plain_pixel_lists_read_as_the_token_by_token_reading(
            vals in proptest::collection::vec(0u32..262, 1..12),
            damage in proptest::option::weighted(
                0.3,
                (0usize..12, "(0[0-9]{3}|[0-9]{4}|-1|1a| |\t|)"),
            ),
            n_delta in proptest::prop_oneof![4 => proptest::strategy::Just(0i64), 1 => -1i64..2],
        ) {
            let mut toks: Vec<String> = vals.iter().map(u32::to_string).collect();
            if let Some((k, t)) = damage {
                let k = k % toks.len();
                toks[k] = t;
            }
            let text = toks.join(" ");
            let n = (vals.len() as i64 + n_delta).max(0) as usize;
            let slow: Option<Vec<u8>> = text
                .split_ascii_whitespace()
                .map(|t| t.parse::<u32>().ok().filter(|v| *v <= 255).map(|v| v as u8))
                .collect::<Option<Vec<u8>>>()
                .filter(|v| v.len() == n);
            proptest::prop_assert_eq!(parse_pixels(&text, n).ok(), slow.clone());
            if let Some(fast) = parse_plain_pixels(text.as_bytes(), n) {
                proptest::prop_assert_eq!(Some(fast), slow);
            }
        }

        /// Any list of 0–999 tokens with any whitespace parses as the per-token `str::parse`
        /// reading would: the same pixels or an error.
        #[test]
        fn pixel_parser_equals_the_token_by_token_reading(
            vals in proptest::collection::vec(0u32..1000, 0..8),
            seps in proptest::collection::vec("[ \t]{1,3}", 8),
        ) {
            let mut text = String::new();
            for (k, v) in vals.iter().enumerate() {
                text.push_str(&seps[k]);
                text.push_str(&v.to_string());
            }
            let slow: Option<Vec<u8>> = text
                .split_ascii_whitespace()
                .map(|t| t.parse::<u32>().ok().filter(|v| *v <= 255).map(|v| v as u8))
                .collect();
            let fast = parse_pixels(&text, vals.len()).ok();
            proptest::prop_assert_eq!(fast, slow);
        }
    }
}
