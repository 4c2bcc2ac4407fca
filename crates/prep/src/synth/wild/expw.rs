//! ExpW: `label/label.lst` and photos of two listed faces each.

use super::*;

pub(super) fn expw(
    base: &BaseFace,
    faces: &face::FacePipeline,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let root = opts.out.join("expw");
    // Two faces side by side, each on its own 200×240 half.
    let half = Canvas {
        width: 200,
        height: 240,
        eye_mid: [0.5, 0.42],
        iod: 46.0,
        fill: 100,
    };
    let per = EXPW.len().div_ceil(2);
    // (photo name, its image, its list lines)
    let photos: Vec<crate::Result<(String, GrayImage, String)>> = (0..opts.subjects * per)
        .into_par_iter()
        .map(|p| {
            let j = p % per;
            let labels: Vec<usize> = [2 * j, 2 * j + 1]
                .into_iter()
                .filter(|&l| l < EXPW.len())
                .collect();
            let name = format!(
                "{}_synthetic_{:04}.jpg",
                crate::datasets::expw::EXPW_CLASSES[labels[0]],
                p
            );
            let mut px = vec![0u8; 2 * half.width * half.height];
            let mut lines = String::new();
            for side in 0..2 {
                let person = EXPW_PEOPLE + (2 * p + side) as u64;
                let (expr, label) = match labels.get(side) {
                    Some(&l) => (EXPW[l], Some(l)),
                    None => ("", None),
                };
                // An unlisted face on the right of a one-face photo: a bystander.
                let fr = photo(base, opts.seed, person, expr, &half);
                for y in 0..half.height {
                    let row = &fr.image.data()[y * half.width..(y + 1) * half.width];
                    let at = y * 2 * half.width + side * half.width;
                    px[at..at + half.width].copy_from_slice(row);
                }
                if let Some(l) = label {
                    let b = face_box(faces, &fr, (side * half.width) as f64);
                    lines.push_str(&format!(
                        "{name} {side} {} {} {} {} {:.3} {l}\n",
                        b[1],
                        b[0],
                        b[2],
                        b[3],
                        40.0 + p as f64 % 17.0
                    ));
                }
            }
            let img = GrayImage::new(2 * half.width, half.height, px)
                .map_err(|e| crate::PrepError::parse(&root, 0, format!("composing {name}: {e}")))?;
            write_file(&root.join("image/origin").join(&name), &jpeg(&img))?;
            Ok((name, img, lines))
        })
        .collect();
    let mut list = String::new();
    let mut done = Vec::new();
    for p in photos {
        let (name, img, lines) = p?;
        list.push_str(&lines);
        report.expw_faces += lines.lines().count();
        done.push((name, img, lines));
    }
    report.expw_photos = done.len();
    let id = |name: &str, face: &str| format!("expw/{}/{face}", name.trim_end_matches(".jpg"));
    // Planted: photo 0 copied byte for byte (both faces: two exact pairs); photo 1 brightened
    // (two near pairs). ExpW has no splits: where the copies land is the fold assignment's.
    if done.len() >= 2 {
        for (of, kind, what) in [
            (0usize, DuplicateKind::Exact, "exact-copy"),
            (1, DuplicateKind::Near, "near"),
        ] {
            let (name, img, lines) = &done[of];
            let to = format!("copy_{name}");
            let bytes = if kind == DuplicateKind::Near {
                jpeg(&brightened(img))
            } else {
                let src = root.join("image/origin").join(name);
                std::fs::read(&src).map_err(|e| crate::synth::files::io_err(&src, e))?
            };
            write_file(&root.join("image/origin").join(&to), &bytes)?;
            for line in lines.lines() {
                let face = line.split_whitespace().nth(1).unwrap_or("0");
                list.push_str(&format!("{to}{}\n", &line[name.len()..]));
                report.planted.push(PlantedDuplicate {
                    dataset: "expw",
                    kind,
                    what,
                    original: id(name, face),
                    copy: id(&to, face),
                });
                report.expw_faces += 1;
            }
            report.expw_photos += 1;
        }
    }
    write_file(
        &root.join(crate::datasets::expw::LABEL_FILE),
        list.as_bytes(),
    )
}
