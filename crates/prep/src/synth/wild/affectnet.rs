//! AffectNet's manually annotated lists with the true landmarks, boxes and valence / arousal.

use super::*;

pub(super) fn affectnet(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("affectnet");
    let canvas = Canvas {
        width: 256,
        height: 256,
        eye_mid: [0.5, 0.4],
        iod: 58.0,
        fill: 100,
    };
    // Per person: the 8 expressions 0–7, then one of 8–10 (none, uncertain, no-face).
    let per = AFFECTNET.len() + 1;
    let rows: Vec<crate::Result<(bool, String, GrayImage)>> = (0..opts.subjects * per)
        .into_par_iter()
        .map(|i| {
            let (s, c) = (i / per, i % per);
            let expression = if c < AFFECTNET.len() { c } else { 8 + s % 3 };
            let (expr, va) = AFFECTNET
                .get(expression)
                .copied()
                .unwrap_or(("", [0.0, 0.0]));
            let fr = photo(base, opts.seed, AFFECTNET_PEOPLE + i as u64, expr, &canvas);
            let rel = format!("{}/{:08x}.jpg", 100 + s, 0x5eed_0000 + i);
            write_file(
                &root.join("Manually_Annotated_Images").join(&rel),
                &jpeg(&fr.image),
            )?;
            let b = face_box(faces, &fr, 0.0);
            let lm: Vec<String> = fr
                .landmarks
                .iter()
                .flat_map(|p| [format!("{:.2}", p[0]), format!("{:.2}", p[1])])
                .collect();
            let row = format!(
                "{rel},{},{},{},{},{},{expression},{},{}\n",
                b[0],
                b[1],
                b[2] - b[0] + 1,
                b[3] - b[1] + 1,
                lm.join(";"),
                va[0],
                va[1]
            );
            Ok((s % 10 >= 8, row, fr.image))
        })
        .collect();
    let header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";
    let mut lists = [String::from(header), String::from(header)];
    let mut kept: Vec<(String, GrayImage)> = Vec::new();
    for r in rows {
        let (validation, row, img) = r?;
        lists[validation as usize].push_str(&row);
        kept.push((row, img));
    }
    report.affectnet_rows = kept.len();
    report.affectnet_excluded = opts.subjects;
    let id = |row: &str| {
        let rel = row.split(',').next().unwrap_or_default();
        format!("affectnet/{}", rel.trim_end_matches(".jpg"))
    };
    // Planted: rows 0, 1 and 2 (person 0, training), copied as other files of directory 99.
    if kept.len() >= 3 {
        let plants = [
            (
                0usize,
                1usize,
                None,
                DuplicateKind::Exact,
                "exact-across-splits",
            ),
            (1, 0, Some(6), DuplicateKind::Exact, "exact-conflicting"),
            (2, 1, None, DuplicateKind::Near, "near"),
        ];
        for (k, (of, list, relabel, kind, what)) in plants.into_iter().enumerate() {
            let (row, img) = &kept[of];
            let rel = format!("99/copy{k}.jpg");
            let bytes = if kind == DuplicateKind::Near {
                jpeg(&brightened(img))
            } else {
                let src = root
                    .join("Manually_Annotated_Images")
                    .join(row.split(',').next().unwrap_or_default());
                std::fs::read(&src).map_err(|e| crate::synth::files::io_err(&src, e))?
            };
            write_file(&root.join("Manually_Annotated_Images").join(&rel), &bytes)?;
            let mut f: Vec<String> = row.trim_end().split(',').map(str::to_string).collect();
            f[0] = rel;
            if let Some(l) = relabel {
                f[6] = format!("{l}");
            }
            let copy = f.join(",") + "\n";
            lists[list].push_str(&copy);
            report.planted.push(PlantedDuplicate {
                dataset: "affectnet",
                kind,
                what,
                original: id(row),
                copy: id(&copy),
            });
            report.affectnet_rows += 1;
        }
    }
    let dir = root.join("Manually_Annotated_file_lists");
    write_file(&dir.join("training.csv"), lists[0].as_bytes())?;
    write_file(&dir.join("validation.csv"), lists[1].as_bytes())
}
