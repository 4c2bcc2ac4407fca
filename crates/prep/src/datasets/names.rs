//! Subject, sequence and class parsed from file names, so that class-folder datasets get
//! subject-independent folds.

/// What a file name says about its sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameInfo {
    /// Subject id.
    pub subject: String,
    /// Sequence id within the subject, when the name carries one.
    pub sequence: Option<String>,
    /// Frame number, when the name carries one.
    pub frame: Option<u32>,
    /// Class code carried by the name (JAFFE), if any.
    pub class_code: Option<String>,
}

/// CK+ style `S010_004_00000017.png` → subject `S010`, sequence `004`, frame 17.
pub fn parse_ckplus_name(file_name: &str) -> Option<NameInfo> {
    let stem = file_name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(file_name);
    let mut parts = stem.split('_');
    let (subject, sequence, frame) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || subject.len() < 2
        || !subject.starts_with('S')
        || !subject[1..].bytes().all(|b| b.is_ascii_digit())
        || sequence.is_empty()
        || !sequence.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(NameInfo {
        subject: subject.to_string(),
        sequence: Some(sequence.to_string()),
        frame: Some(frame.parse().ok()?),
        class_code: None,
    })
}

/// JAFFE style `KA.AN1.39.tiff` → subject `KA`, class code `AN`, sequence `AN1`.
pub fn parse_jaffe_name(file_name: &str) -> Option<NameInfo> {
    let parts: Vec<&str> = file_name.split('.').collect();
    let [subject, expr, number, _ext] = parts.as_slice() else {
        return None;
    };
    let code: String = expr
        .chars()
        .take_while(|c| c.is_ascii_uppercase())
        .collect();
    if subject.len() != 2 || !subject.chars().all(|c| c.is_ascii_uppercase()) || code.len() != 2 {
        return None;
    }
    number.parse::<u32>().ok()?;
    Some(NameInfo {
        subject: subject.to_string(),
        sequence: Some(expr.to_string()),
        frame: None,
        class_code: Some(code),
    })
}

/// JAFFE class codes in label order, with their class names.
pub const JAFFE_CLASSES: [(&str, &str); 7] = [
    ("AN", "anger"),
    ("DI", "disgust"),
    ("FE", "fear"),
    ("HA", "happy"),
    ("NE", "neutral"),
    ("SA", "sadness"),
    ("SU", "surprise"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckplus_names() {
        let n = parse_ckplus_name("S010_004_00000017.png").unwrap();
        assert_eq!(
            (n.subject.as_str(), n.sequence.as_deref(), n.frame),
            ("S010", Some("004"), Some(17))
        );
        for bad in [
            "S010_004.png",
            "X010_004_00000017.png",
            "S010_004_0000x017.png",
            "S010_004_1_2.png",
            "S_004_1.png",
        ] {
            assert!(parse_ckplus_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn jaffe_names() {
        let n = parse_jaffe_name("KA.AN1.39.tiff").unwrap();
        assert_eq!(
            (
                n.subject.as_str(),
                n.class_code.as_deref(),
                n.sequence.as_deref()
            ),
            ("KA", Some("AN"), Some("AN1"))
        );
        for bad in [
            "KA.AN1.tiff",
            "K.AN1.39.tiff",
            "KA.A1.39.tiff",
            "KA.AN1.x.tiff",
            "ka.AN1.39.tiff",
        ] {
            assert!(parse_jaffe_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn real_shared_names_parse() {
        let Some(shared) = testkit::shared_dir("real_shared_names_parse") else {
            return;
        };
        let mut jaffe_subjects = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(shared.join("data/jaffe")).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let n = parse_jaffe_name(&name).unwrap_or_else(|| panic!("{name}"));
            assert!(
                JAFFE_CLASSES
                    .iter()
                    .any(|(c, _)| Some(*c) == n.class_code.as_deref()),
                "{name}"
            );
            jaffe_subjects.insert(n.subject);
        }
        assert_eq!(jaffe_subjects.len(), 10);
        let mut ck_subjects = std::collections::BTreeSet::new();
        for class in std::fs::read_dir(shared.join("data/ckplus48")).unwrap() {
            for e in std::fs::read_dir(class.unwrap().path()).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                ck_subjects.insert(
                    parse_ckplus_name(&name)
                        .unwrap_or_else(|| panic!("{name}"))
                        .subject,
                );
            }
        }
        assert_eq!(ck_subjects.len(), 118);
    }
}
