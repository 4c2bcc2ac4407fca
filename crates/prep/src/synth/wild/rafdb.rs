//! RAF-DB basic in its distributed layout: the label list, original and aligned images, boxes.

use super::*;

pub(super) fn rafdb(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("rafdb");
    let original = Canvas {
        width: 320,
        height: 240,
        eye_mid: [0.5, 0.42],
        iod: 56.0,
        fill: 100,
    };
    let aligned = Canvas {
        width: 100,
        height: 100,
        eye_mid: [0.5, 0.4],
        iod: 34.0,
        fill: 100,
    };
    // Names are numbered per split in generation order: (index, label 1–7, split name, number).
    let mut counters = [0usize; 2];
    let mut entries: Vec<(usize, usize, &str, usize)> = Vec::new();
    for i in 0..opts.subjects * RAFDB.len() {
        let test = (i / RAFDB.len()) % 10 >= 8;
        counters[test as usize] += 1;
        let split = if test { "test" } else { "train" };
        entries.push((i, i % RAFDB.len() + 1, split, counters[test as usize]));
    }
    // Every fifth image ships without a box file: the detector finds it.
    let written: Vec<crate::Result<(String, GrayImage)>> = entries
        .par_iter()
        .map(|&(i, label, split, k)| {
            let stem = format!("{split}_{k:05}");
            let person = RAFDB_PEOPLE + i as u64;
            let fr = photo(base, opts.seed, person, RAFDB[label - 1], &original);
            write_file(
                &root.join("Image/original").join(format!("{stem}.jpg")),
                &jpeg(&fr.image),
            )?;
            if i % 5 != 4 {
                let b = face_box(faces, &fr, 0.0);
                write_file(
                    &root
                        .join("Annotation/boundingbox")
                        .join(format!("{stem}_boundingbox.txt")),
                    format!("{}.0 {}.0 {}.0 {}.0\n", b[0], b[1], b[2], b[3]).as_bytes(),
                )?;
            }
            // Five points (eye centres, nose tip, mouth corners), then gender, race, age.
            let (l, r) = eye_centres(&fr.landmarks);
            let lm = &fr.landmarks;
            let five = [l, r, lm[30], lm[48], lm[54]];
            let mut manual: String = five
                .iter()
                .map(|p| format!("{:.2}\t{:.2}\n", p[0], p[1]))
                .collect();
            manual.push_str("0\n0\n1\n");
            write_file(
                &root
                    .join("Annotation/manual")
                    .join(format!("{stem}_manu_attri.txt")),
                manual.as_bytes(),
            )?;
            let small = photo(base, opts.seed, person, RAFDB[label - 1], &aligned);
            write_file(
                &root
                    .join("Image/aligned")
                    .join(format!("{stem}_aligned.jpg")),
                &jpeg(&small.image),
            )?;
            Ok((stem, fr.image))
        })
        .collect();
    let mut list = String::new();
    let mut images = Vec::new();
    for ((_, label, _, _), w) in entries.iter().zip(written) {
        let (stem, img) = w?;
        list.push_str(&format!("{stem}.jpg {label}\n"));
        images.push((stem, *label, img));
    }
    report.rafdb_without_box = entries.iter().filter(|e| e.0 % 5 == 4).count();
    report.rafdb_images = entries.len();
    // The planted copies: the boxes are copied too (a copy is the same annotated image).
    if images.len() >= 3 {
        let copy_file = |from: &str, to: &str| -> crate::Result<()> {
            for (dir, suffix) in [
                ("Image/original", ".jpg"),
                ("Annotation/boundingbox", "_boundingbox.txt"),
                ("Annotation/manual", "_manu_attri.txt"),
                ("Image/aligned", "_aligned.jpg"),
            ] {
                let src = root.join(dir).join(format!("{from}{suffix}"));
                if src.is_file() {
                    let bytes =
                        std::fs::read(&src).map_err(|e| crate::synth::files::io_err(&src, e))?;
                    write_file(&root.join(dir).join(format!("{to}{suffix}")), &bytes)?;
                }
            }
            Ok(())
        };
        let mut next = |split: usize| {
            counters[split] += 1;
            format!("{}_{:05}", ["train", "test"][split], counters[split])
        };
        let plants = [
            (
                0usize,
                1usize,
                None,
                DuplicateKind::Exact,
                "exact-across-splits",
            ),
            (
                1,
                0,
                Some(images[1].1 % 7 + 1),
                DuplicateKind::Exact,
                "exact-conflicting",
            ),
            (2, 1, None, DuplicateKind::Near, "near"),
        ];
        for (of, split, relabel, kind, what) in plants {
            let (stem, label, img) = &images[of];
            let to = next(split);
            copy_file(stem, &to)?;
            if kind == DuplicateKind::Near {
                write_file(
                    &root.join("Image/original").join(format!("{to}.jpg")),
                    &jpeg(&brightened(img)),
                )?;
            }
            list.push_str(&format!("{to}.jpg {}\n", relabel.unwrap_or(*label)));
            report.planted.push(PlantedDuplicate {
                dataset: "rafdb",
                kind,
                what,
                original: format!("rafdb/{stem}"),
                copy: format!("rafdb/{to}"),
            });
            report.rafdb_images += 1;
        }
    }
    write_file(
        &root.join(crate::datasets::rafdb::LIST_FILE),
        list.as_bytes(),
    )
}
