//! The documentation stays navigable: every relative link in README.md, CHANGELOG.md, docs/ and
//! the crates' Markdown resolves to a file of the repository (and a `#fragment` to a heading of
//! it), and no source or doc points at material outside the repository (`shared/docs/…`).
//! `make lint` runs this test too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Markdown files that make up the documentation.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut stack = vec![
        root.join("docs"),
        root.join("crates"),
        root.join("python"),
        root.join("scripts"),
    ];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" && !name.ends_with(".egg-info") {
                    stack.push(p);
                }
            } else if name.ends_with(".md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The `(target)` of every `[text](target)` outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Code spans can hold `[a](b)`-looking text: blank them out.
        let mut plain = String::new();
        let mut in_span = false;
        for c in line.chars() {
            if c == '`' {
                in_span = !in_span;
            }
            plain.push(if in_span { ' ' } else { c });
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            match after.find(')') {
                Some(j) => {
                    out.push(after[..j].trim().to_string());
                    rest = &after[j..];
                }
                None => break,
            }
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repo();
    let files = doc_files(&root);
    assert!(files.len() >= 10, "{files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") || link.is_empty() {
                continue;
            }
            checked += 1;
            let (path, fragment) = match link.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            }
            if let Some(f) = fragment {
                if target.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&target).unwrap();
                    if !anchors(&text).contains(f) {
                        broken.push(format!("{}: {link} (no such heading)", file.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 30, "only {checked} relative links found");
}

#[test]
fn nothing_points_at_docs_outside_the_repository() {
    let root = repo();
    let mut offenders = Vec::new();
    let mut stack = vec![
        root.join("crates"),
        root.join("docs"),
        root.join("python"),
        root.join("scripts"),
        root.join("tests"),
        root.join("fuzz"),
    ];
    let mut files = vec![root.join("README.md"), root.join("Makefile")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.')
                    && !["target", "corpus", "regressions"].contains(&name.as_str())
                {
                    stack.push(p);
                }
            } else {
                files.push(p);
            }
        }
    }
    let needle = ["shared", "docs/"].concat();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            if text.contains(&needle) {
                offenders.push(f.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "files citing {needle}: {offenders:?}");
}

#[test]
fn anchors_and_links_are_read_as_github_does() {
    assert_eq!(anchor(" Two commands at once"), "two-commands-at-once");
    assert_eq!(anchor("`prep build` at scale"), "prep-build-at-scale");
    assert_eq!(
        links("see [a](x.md#b) and `[c](not-a-link)` and [d](https://e)"),
        vec!["x.md#b", "https://e"]
    );
}
