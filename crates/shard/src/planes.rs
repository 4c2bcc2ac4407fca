//! The names of a record's planes (FORMAT.md section 5): `face`, the aligned face of the peak
//! frame, and `<part>/<slot>` for the eyes, nose and mouth crops of every frame slot. `prep`
//! writes records with these names and `train` reads planes by them: one definition for both.

use crate::PlaneInfo;

/// The aligned face of the peak frame.
pub const FACE: &str = "face";

/// The part crops, in the order the network takes them.
pub const PARTS: [&str; 3] = ["eyes", "nose", "mouth"];

/// The name of part `part`'s crop in frame slot `slot`, e.g. `eyes/0`.
pub fn part_plane(part: &str, slot: usize) -> String {
    format!("{part}/{slot}")
}

/// The part and slot of a part plane's name (`mouth/2` → `("mouth", 2)`); `None` for `face` and
/// for names of no part in [`PARTS`].
pub fn parse_part_plane(name: &str) -> Option<(&'static str, usize)> {
    let (part, slot) = name.split_once('/')?;
    let part = PARTS.iter().find(|p| **p == part)?;
    Some((part, slot.parse().ok()?))
}

/// The planes of a sample with `slots` frame slots, in the order records store them: the face,
/// then for each slot its eyes, nose and mouth. Sizes are (height, width).
pub fn sample_planes(face: (u16, u16), parts: [(u16, u16); 3], slots: usize) -> Vec<PlaneInfo> {
    let mut planes = vec![PlaneInfo::new(FACE, face.0, face.1)];
    for slot in 0..slots {
        for (part, (h, w)) in PARTS.iter().zip(parts) {
            planes.push(PlaneInfo::new(part_plane(part, slot), h, w));
        }
    }
    planes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        assert_eq!(part_plane("eyes", 2), "eyes/2");
        assert_eq!(parse_part_plane("mouth/10"), Some(("mouth", 10)));
        assert_eq!(parse_part_plane(FACE), None);
        assert_eq!(parse_part_plane("ears/1"), None);
        assert_eq!(parse_part_plane("nose/x"), None);
        let p = sample_planes((128, 128), [(48, 128), (64, 32), (32, 64)], 2);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["face", "eyes/0", "nose/0", "mouth/0", "eyes/1", "nose/1", "mouth/1"]
        );
        assert_eq!((p[2].height, p[2].width), (64, 32));
    }
}
