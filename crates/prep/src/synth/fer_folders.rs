//! FER2013's two image-folder releases written from the synthetic FER2013 rows, with the extras
//! that real copies carry, each listed so that a test can require exactly those rows:
//!
//! * `fer2013-folders/`: `train/`, `validation/` (PublicTest), `test/` (PrivateTest), as the
//!   copy the project's docs name; augmented copies `Training_<n>.jpg<k>.jpg` of every disgust
//!   image, the Git LFS pointers of its csvs, a README, an unknown top-level folder, an image
//!   whose name says PrivateTest inside `train/`, a file named like no FER2013 image, a
//!   `Thumbs.db`, and a PublicTest image in both `validation/` and `test/`;
//! * `fer2013-kaggle/`: Kaggle's `train/` and `test/` (PublicTest and PrivateTest together),
//!   with one augmented copy and a stray file.
//!
//! Image names are `<Usage>_<row>.jpg`, the row being the synthetic csv's data row, so the
//! releases hold the csv's images (as JPEG) under the csv's labels and splits, and two more
//! ([`FolderReleases::extra_images`]).

use super::files::{encode, write_file};
use crate::datasets::fer2013::FER2013_CLASSES;
use crate::inventory::reason;
use face::GrayImage;
use serde::Serialize;
use std::path::Path;

/// One synthetic FER2013 image: its label (0–6), Usage and 48×48 pixels.
#[derive(Debug, Clone)]
pub struct FerRow {
    /// Label 0–6.
    pub label: usize,
    /// `Training`, `PublicTest` or `PrivateTest`.
    pub usage: &'static str,
    /// The image.
    pub image: GrayImage,
}

/// One planted extra: its path under the release root and the failure reason it must get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlantedExtra {
    /// Path relative to the release root.
    pub path: String,
    /// The reason code the build must give it.
    pub reason: String,
}

/// What [`write_releases`] wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReleases {
    /// FER2013 images in each release (every csv row, once).
    pub images: usize,
    /// The three-folder release's planted extras.
    pub three_folder_extras: Vec<PlantedExtra>,
    /// Kaggle's release's planted extras.
    pub kaggle_extras: Vec<PlantedExtra>,
    /// Images in both releases beyond the csv's, which must become samples: (sample id, label).
    /// A PrivateTest image copied as a Training image of a new name (a cross-split exact
    /// duplicate, as FER2013 has them), and a different image under an existing Training name
    /// in another class (as Kaggle's release has two).
    pub extra_images: Vec<(String, usize)>,
    /// The exact duplicate pair planted: (the original's sample id, the copy's).
    pub planted_duplicate: Option<(String, String)>,
}

/// The release folder an image of `usage` goes to in the three-folder and in Kaggle's release.
fn folders_of(usage: &str) -> (&'static str, &'static str) {
    match usage {
        "Training" => ("train", "train"),
        "PublicTest" => ("validation", "test"),
        _ => ("test", "test"),
    }
}

/// Writes `fer2013-folders/` and `fer2013-kaggle/` under `out` from `rows` (the csv's rows, in
/// order).
///
/// Errors: I/O under `out`.
pub fn write_releases(out: &Path, rows: &[FerRow]) -> crate::Result<FolderReleases> {
    let three = out.join("fer2013-folders");
    let kaggle = out.join("fer2013-kaggle");
    let mut report = FolderReleases {
        images: rows.len(),
        ..Default::default()
    };
    let plant = |list: &mut Vec<PlantedExtra>,
                 root: &Path,
                 path: String,
                 bytes: &[u8],
                 why: &str|
     -> crate::Result<()> {
        write_file(&root.join(&path), bytes)?;
        list.push(PlantedExtra {
            path,
            reason: why.to_string(),
        });
        Ok(())
    };
    let mut first_train = None;
    for (row, r) in rows.iter().enumerate() {
        let jpeg = encode(&r.image, image::ImageFormat::Jpeg);
        let class = FER2013_CLASSES[r.label];
        let name = format!("{}_{row}.jpg", r.usage);
        let (a, b) = folders_of(r.usage);
        write_file(&three.join(a).join(class).join(&name), &jpeg)?;
        write_file(&kaggle.join(b).join(class).join(&name), &jpeg)?;
        if r.usage == "Training" && first_train.is_none() {
            first_train = Some((class, name.clone(), jpeg.clone()));
        }
        // The copy this release was taken from multiplied disgust by augmentation.
        if class == "disgust" {
            for k in [1, 2] {
                plant(
                    &mut report.three_folder_extras,
                    &three,
                    format!("{a}/{class}/{name}{k}.jpg"),
                    &jpeg,
                    reason::AUGMENTED_COPY,
                )?;
            }
        }
    }
    // A PrivateTest image again as a Training image (a name past the csv's rows).
    if let Some((row, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.usage == "PrivateTest")
    {
        let copy = format!("Training_{}", rows.len() + 1);
        let jpeg = encode(&r.image, image::ImageFormat::Jpeg);
        let class = FER2013_CLASSES[r.label];
        for root in [&three, &kaggle] {
            write_file(
                &root.join("train").join(class).join(format!("{copy}.jpg")),
                &jpeg,
            )?;
        }
        report
            .extra_images
            .push((format!("{class}/{copy}"), r.label));
        report.planted_duplicate = Some((
            format!("{class}/PrivateTest_{row}"),
            format!("{class}/{copy}"),
        ));
    }
    // Another image (the first Training image mirrored) under that image's name, in another
    // class: a second sample, not a failure.
    if let Some((row, r)) = rows.iter().enumerate().find(|(_, r)| r.usage == "Training") {
        let label = (r.label + 1) % FER2013_CLASSES.len();
        let class = FER2013_CLASSES[label];
        let mirrored = face::GrayImage::new(
            r.image.width(),
            r.image.height(),
            r.image
                .data()
                .chunks(r.image.width())
                .flat_map(|line| line.iter().rev().copied())
                .collect(),
        )
        .map_err(|e| crate::PrepError::parse(&three, 0, e.to_string()))?;
        let jpeg = encode(&mirrored, image::ImageFormat::Jpeg);
        for root in [&three, &kaggle] {
            write_file(
                &root
                    .join("train")
                    .join(class)
                    .join(format!("Training_{row}.jpg")),
                &jpeg,
            )?;
        }
        report
            .extra_images
            .push((format!("{class}/Training_{row}"), label));
    }
    let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:32b26681f01a4389f8c986009e3bded79a16bbb546c22d4f22a2e99137b8e281\nsize 264883338\n";
    let t = &mut report.three_folder_extras;
    for csv in ["train.csv", "test.csv", "validation.csv"] {
        plant(t, &three, csv.into(), lfs, reason::NOT_AN_IMAGE)?;
    }
    plant(
        t,
        &three,
        "README.md".into(),
        b"# a copy of FER2013\n",
        reason::NOT_AN_IMAGE,
    )?;
    if let Some((class, name, jpeg)) = &first_train {
        // An unknown folder is one row (its files are not read).
        write_file(&three.join("augmented/disgust/Training_0.jpg"), jpeg)?;
        t.push(PlantedExtra {
            path: "augmented".into(),
            reason: reason::UNKNOWN_FOLDER.into(),
        });
        // A PrivateTest name under train/ (a row number past the csv's, so it names no image).
        plant(
            t,
            &three,
            format!("train/{class}/PrivateTest_{}.jpg", rows.len()),
            jpeg,
            reason::SPLIT_MISMATCH,
        )?;
        plant(
            t,
            &three,
            format!("train/{class}/IMG_0001.jpg"),
            jpeg,
            reason::BAD_NAME,
        )?;
        plant(
            t,
            &three,
            format!("train/{class}/Thumbs.db"),
            b"\0\0",
            reason::NOT_AN_IMAGE,
        )?;
        // A PublicTest image in test/ as well as validation/ (a merge of both arrangements):
        // test/ comes first in name order and is kept.
        if let Some((row, r)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.usage == "PublicTest")
        {
            let class = FER2013_CLASSES[r.label];
            let jpeg = encode(&r.image, image::ImageFormat::Jpeg);
            write_file(
                &three.join(format!("test/{class}/PublicTest_{row}.jpg")),
                &jpeg,
            )?;
            t.push(PlantedExtra {
                path: format!("validation/{class}/PublicTest_{row}.jpg"),
                reason: reason::DUPLICATE_NAME.into(),
            });
        }
        let k = &mut report.kaggle_extras;
        plant(
            k,
            &kaggle,
            format!("train/{class}/{name}3.jpg"),
            jpeg,
            reason::AUGMENTED_COPY,
        )?;
        plant(k, &kaggle, "fer2013.csv".into(), lfs, reason::NOT_AN_IMAGE)?;
    }
    // Rows are compared in the order the build sorts failures (by input).
    report
        .three_folder_extras
        .sort_by(|a, b| a.path.cmp(&b.path));
    report.kaggle_extras.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}
