//! Tests of the frames → crops path and its recipe.

use super::*;

fn recipe() -> SampleRecipe {
    SampleRecipe::default()
}

#[test]
fn frame_positions_match_the_authors_lists() {
    let r = recipe();
    // CK+ S010/002 has 14 frames; the authors list frames 1, 8, 14 (1-based).
    assert_eq!(r.frame_indices(14), vec![0, 7, 13]);
    // Oulu-CASIA P001/Anger: 000, 008, 016 of 17 frames.
    assert_eq!(r.frame_indices(17), vec![0, 8, 16]);
    assert_eq!(r.frame_indices(1), vec![0, 0, 0]);
    assert_eq!(r.frame_indices(2), vec![0, 1, 1]);
}

#[test]
fn model_files_follow_the_none_and_same_cascade_rules() {
    let p = PathBuf::from("m.dat");
    let a = ModelFiles::resolve(p.clone(), "lbpcascade_frontalface", "none");
    assert_eq!(a.fallback, None);
    let b = ModelFiles::resolve(
        p.clone(),
        "lbpcascade_frontalface",
        "lbpcascade_frontalface",
    );
    assert_eq!(b.fallback, None);
    let c = ModelFiles::resolve(p.clone(), "/x/my.xml", "");
    assert_eq!((c.cascade, c.fallback), (PathBuf::from("/x/my.xml"), None));
    let d = ModelFiles::resolve(
        p,
        "lbpcascade_frontalface",
        "haarcascade_frontalface_default",
    );
    assert!(d
        .fallback
        .unwrap()
        .ends_with("haarcascades/haarcascade_frontalface_default.xml"));
}

#[test]
fn slots_repeat_the_previous_distinct_frame() {
    let img = GrayImage::filled(4, 4, 1);
    let frames = SampleFrames {
        slots: 3,
        distinct: vec![(0, img.clone()), (2, img.clone())],
        landmarks: None,
        boxes: None,
    };
    let crops = FaceCrops {
        face: img.clone(),
        eyes: img.clone(),
        nose: img.clone(),
        mouth: img.clone(),
        angle_deg: 0.0,
        padded: false,
    };
    let r = |d: &str| FrameCrops {
        landmarks: vec![],
        crops: crops.clone(),
        source: FaceSource::WholeFrame,
        detector: d.into(),
        face_box: None,
        repeated: false,
    };
    let out = frames.fill_slots(vec![r("a"), r("b")]).unwrap();
    let got: Vec<(&str, bool)> = out
        .iter()
        .map(|c| (c.detector.as_str(), c.repeated))
        .collect();
    assert_eq!(got, [("a", false), ("a", true), ("b", false)]);
    let empty = SampleFrames {
        slots: 2,
        ..Default::default()
    };
    assert!(empty.fill_slots(vec![]).is_none());
}
