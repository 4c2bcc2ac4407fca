//! The recipe a cache's samples were cut with ([`face::SampleRecipe`]), read back from the cache
//! manifest (`extra.recipe`; for caches written before that entry existed, the prep `config` and
//! the resolved `box_mode`), so that `train predict` cuts new inputs exactly as `prep build` cut
//! the cache.

use crate::{Result, TrainError};
use face::SampleRecipe;
use serde::de::DeserializeOwned;

/// Reads the recipe from a manifest's `extra` object. No field takes a default.
///
/// Errors: [`TrainError::Provenance`] naming `cache` and the missing or mistyped field.
pub fn from_manifest_extra(extra: &serde_json::Value, cache: &str) -> Result<SampleRecipe> {
    let missing = |field: String| TrainError::Provenance {
        cache: cache.to_string(),
        field,
        reason: "missing".into(),
    };
    fn typed<T: DeserializeOwned>(v: &serde_json::Value, cache: &str, field: &str) -> Result<T> {
        serde_json::from_value(v.clone()).map_err(|e| TrainError::Provenance {
            cache: cache.to_string(),
            field: field.to_string(),
            reason: e.to_string(),
        })
    }
    if let Some(recipe) = extra.get("recipe") {
        return typed(recipe, cache, "extra.recipe");
    }
    let config = extra
        .get("config")
        .ok_or_else(|| missing("extra.config".into()))?;
    let get = |name: &str| -> Result<&serde_json::Value> {
        config
            .get(name)
            .ok_or_else(|| missing(format!("extra.config.{name}")))
    };
    let field = |name: &str| -> Result<serde_json::Value> { get(name).cloned() };
    let at = |n: &str| format!("extra.config.{n}");
    let box_mode = extra
        .get("box_mode")
        .ok_or_else(|| missing("extra.box_mode".into()))?;
    Ok(SampleRecipe {
        box_mode: typed(box_mode, cache, "extra.box_mode")?,
        crops: typed(&field("crops")?, cache, &at("crops"))?,
        frame_positions: typed(&field("frame_positions")?, cache, &at("frame_positions"))?,
        cascade: typed(&field("cascade")?, cache, &at("cascade"))?,
        fallback_cascade: typed(&field("fallback_cascade")?, cache, &at("fallback_cascade"))?,
        min_face_fraction: typed(
            &field("min_face_fraction")?,
            cache,
            &at("min_face_fraction"),
        )?,
        detect_every_frame: typed(
            &field("detect_every_frame")?,
            cache,
            &at("detect_every_frame"),
        )?,
        reinitialise: typed(&field("reinitialise")?, cache, &at("reinitialise"))?,
        dataset_landmarks: typed(
            &field("dataset_landmarks")?,
            cache,
            &at("dataset_landmarks"),
        )?,
        // Older caches had no dataset boxes.
        dataset_boxes: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> SampleRecipe {
        SampleRecipe::default()
    }

    #[test]
    fn recipe_reads_back_from_the_recipe_entry_and_from_older_manifests() {
        let r = recipe();
        let new = serde_json::json!({ "recipe": r });
        assert_eq!(from_manifest_extra(&new, "c").unwrap(), r);
        let mut config = serde_json::to_value(&r).unwrap();
        let obj = config.as_object_mut().unwrap();
        obj.remove("box_mode");
        obj.insert("seed".into(), 3.into());
        let old = serde_json::json!({ "config": config, "box_mode": "detect" });
        assert_eq!(from_manifest_extra(&old, "c").unwrap(), r);
    }

    #[test]
    fn recipe_errors_name_the_cache_and_the_field() {
        let r = recipe();
        let mut config = serde_json::to_value(&r).unwrap();
        config.as_object_mut().unwrap().remove("cascade");
        let e = from_manifest_extra(
            &serde_json::json!({ "config": config, "box_mode": "detect" }),
            "ckplus@1234",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("ckplus@1234") && e.contains("extra.config.cascade"),
            "{e}"
        );
        let e = from_manifest_extra(
            &serde_json::json!({ "config": serde_json::to_value(&r).unwrap(), "box_mode": 3 }),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("extra.box_mode"), "{e}");
        let e = from_manifest_extra(&serde_json::json!({}), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra.config") && e.contains("missing"), "{e}");
    }
}
