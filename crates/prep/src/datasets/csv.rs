//! The csv reading every csv dataset shares (FER2013, FER+, AffectNet's lists): a header, then
//! lines read one at a time with a small quote-aware splitter rather than a dataframe reader,
//! because every malformed row must become a failure row naming its line, while a dataframe reader
//! either rejects the whole file or turns a bad field into a silent null.

use crate::{PrepError, Result};
use std::io::BufRead;
use std::path::Path;

/// The fields of one csv line: a line without quotes splits at its commas with no copy (a FER2013
/// row's 9 KB pixel field is not copied), any other goes through [`split_csv_line`].
pub fn csv_fields(line: &str) -> std::result::Result<Vec<std::borrow::Cow<'_, str>>, String> {
    if line.contains('"') {
        Ok(split_csv_line(line)?.into_iter().map(Into::into).collect())
    } else {
        Ok(line.split(',').map(Into::into).collect())
    }
}

/// Splits one csv line into fields: commas separate, double quotes enclose fields that may hold
/// commas, `""` inside quotes is a quote. Errors name what is wrong.
pub fn split_csv_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("text after a closing quote".into());
                    }
                }
                _ => cur.push(c),
            }
        } else {
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut cur));
                    at_start = true;
                    continue;
                }
                '"' if at_start => quoted = true,
                '"' => return Err("a quote inside an unquoted field".into()),
                _ => cur.push(c),
            }
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// One line of a csv file: its 1-based number, where it is (byte offset and length with its line
/// end) and its text, or why it is not text.
pub(crate) type Line = (usize, (u64, u32), std::result::Result<String, String>);

/// Reads a csv file line by line (CRLF and a UTF-8 BOM accepted); a line that is not UTF-8 is
/// returned as an error for that line only.
pub(crate) fn csv_lines(path: &Path) -> Result<(Vec<String>, impl Iterator<Item = Line>)> {
    let io = |e: std::io::Error| PrepError::Io {
        path: path.to_path_buf(),
        cause: e,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut first = Vec::new();
    let first_len = r.read_until(b'\n', &mut first).map_err(io)?;
    if first_len == 0 {
        return Err(PrepError::parse(path, 1, "empty file: no header"));
    }
    let header =
        String::from_utf8(first).map_err(|_| PrepError::parse(path, 1, "header is not UTF-8"))?;
    let header = header
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n']);
    let names = split_csv_line(header)
        .map_err(|e| PrepError::parse(path, 1, format!("header: {e}")))?
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect();
    let mut line_no = 1;
    let mut pos = first_len as u64;
    let mut buf = Vec::new();
    let iter = std::iter::from_fn(move || loop {
        buf.clear();
        let at = pos;
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(n) => pos += n as u64,
            Err(e) => {
                line_no += 1;
                return Some((line_no, (at, 0), Err(format!("read error: {e}"))));
            }
        }
        line_no += 1;
        let span = (at, buf.len() as u32);
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Some((
            line_no,
            span,
            String::from_utf8(std::mem::take(&mut buf)).map_err(|_| "line is not UTF-8".into()),
        ));
    });
    Ok((names, iter))
}

/// The position of column `want` (case-insensitive) among the header `names` of `file`.
///
/// Errors: [`PrepError::Parse`] on line 1 naming the first fields; when the first field is a
/// number, the line is a data row and the message says which header the file should start with,
/// `expected_header`.
pub(crate) fn column(
    names: &[String],
    want: &str,
    file: &Path,
    expected_header: &str,
) -> Result<usize> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(want))
        .ok_or_else(|| {
            // A file without a header has a data row here: name the columns, not 2,304 pixels.
            let shown: Vec<String> = names
                .iter()
                .take(4)
                .map(|n| {
                    if n.chars().count() > 24 {
                        format!("{}…", n.chars().take(24).collect::<String>())
                    } else {
                        n.clone()
                    }
                })
                .collect();
            let looks_like_data = names
                .first()
                .is_some_and(|n| n.trim().parse::<i64>().is_ok());
            PrepError::parse(
                file,
                1,
                format!(
                    "no {want:?} column in the header (line 1 holds {} fields: {shown:?}{}){}",
                    names.len(),
                    if names.len() > 4 { ", …" } else { "" },
                    if looks_like_data {
                        format!(
                            "; it looks like a data row: the file should start with the header \
                             `{expected_header}`"
                        )
                    } else {
                        String::new()
                    }
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_splitting() {
        assert_eq!(split_csv_line("a,b,c").unwrap(), ["a", "b", "c"]);
        // Without quotes the fields are borrowed, with them split; either way the same fields.
        for line in ["a,b,,c", "\"a,b\",c", ",", "x"] {
            let fields: Vec<String> = csv_fields(line)
                .unwrap()
                .into_iter()
                .map(|f| f.into_owned())
                .collect();
            assert_eq!(fields, split_csv_line(line).unwrap(), "{line}");
        }
        assert!(csv_fields("a\"b").is_err());
        assert_eq!(split_csv_line("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(split_csv_line("\"a\"\"b\",").unwrap(), ["a\"b", ""]);
        assert!(split_csv_line("\"abc").is_err());
        assert!(split_csv_line("\"a\"b,c").is_err());
        assert!(split_csv_line("a\"b").is_err());
    }
}
