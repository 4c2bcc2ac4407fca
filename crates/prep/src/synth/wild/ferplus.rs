//! FER+: `fer2013.csv` and `fer2013new.csv` with votes of known patterns.

use super::*;

pub(super) fn ferplus(
    base: &BaseFace,
    opts: &SynthOptions,
    report: &mut WildReport,
) -> crate::Result<()> {
    use rayon::prelude::*;
    let canvas = Canvas {
        width: 48,
        height: 48,
        eye_mid: [0.5, 0.38],
        iod: 17.0,
        fill: 110,
    };
    // (pixels, FER2013 label, Usage, votes)
    let mut rows: Vec<(Vec<u8>, u8, &str, [u32; 10])> = (0..opts.subjects * FERPLUS.len())
        .into_par_iter()
        .map(|i| {
            let (s, c) = (i / FERPLUS.len(), i % FERPLUS.len());
            let fr = photo(
                base,
                opts.seed,
                FERPLUS_PEOPLE + i as u64,
                FERPLUS[c].0,
                &canvas,
            );
            (
                fr.image.into_data(),
                FERPLUS[c].1,
                usage(s),
                ferplus_votes(c, i),
            )
        })
        .collect();
    let id = |r: usize| format!("ferplus/r{r:06}");
    let n = rows.len();
    if n >= 8 {
        // Rows 0, 2 and 5 are Training (person 0) and kept under every rule (patterns 0, 2, 0):
        // an excluded row is no input, and a copy of it no duplicate.
        let (r0, r1, r2) = (rows[0].clone(), rows[5].clone(), rows[2].clone());
        let near: Vec<u8> =
            r2.0.iter()
                .map(|v| v.saturating_add(NEAR_BRIGHTENING))
                .collect();
        // The conflicting copy: another label and another winning emotion (sadness, pattern 0).
        let plants = [
            (
                (r0.0, r0.1, "PublicTest", r0.3),
                0,
                DuplicateKind::Exact,
                "exact-across-splits",
            ),
            (
                (r1.0, 4, "Training", ferplus_votes(3, 0)),
                5,
                DuplicateKind::Exact,
                "exact-conflicting",
            ),
            (
                (near, r2.1, "PrivateTest", r2.3),
                2,
                DuplicateKind::Near,
                "near",
            ),
        ];
        for (row, of, kind, what) in plants {
            report.planted.push(PlantedDuplicate {
                dataset: "ferplus",
                kind,
                what,
                original: id(of),
                copy: id(rows.len()),
            });
            rows.push(row);
        }
    }
    let mut csv = String::from("emotion,pixels,Usage\n");
    let mut plus = String::from(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n",
    );
    for (i, (px, label, usage, votes)) in rows.iter().enumerate() {
        let px: Vec<String> = px.iter().map(|p| p.to_string()).collect();
        csv.push_str(&format!("{label},{},{usage}\n", px.join(" ")));
        let v: Vec<String> = votes.iter().map(|x| x.to_string()).collect();
        plus.push_str(&format!("{usage},fer{i:07}.png,{}\n", v.join(",")));
    }
    let dir = opts.out.join("ferplus");
    write_file(&dir.join("fer2013.csv"), csv.as_bytes())?;
    write_file(&dir.join("fer2013new.csv"), plus.as_bytes())?;
    report.ferplus_rows = rows.len();
    Ok(())
}
