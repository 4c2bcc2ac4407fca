//! The field names of a struct as serde's derive declares them, read by a deserialiser that asks
//! for nothing else: the key list of "did you mean" comes from the schema itself, not from the
//! wording of an error message.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A deserialiser that records the fields `deserialize_struct` is called with and stops.
struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names read"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The field names of `T` (a struct deriving `Deserialize`), aliases included; empty for a type
/// that is not a struct.
pub fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {

    /// Every key of a config written out with every optional value set is among the field
    /// names, and the names hold nothing else.
    #[test]
    fn field_names_are_the_structs_keys() {
        let mut cfg = crate::ExperimentConfig {
            folds: Some(vec![0]),
            ..Default::default()
        };
        cfg.model.pretrained = Some("w.safetensors".into());
        cfg.model.face_size = Some((8, 8));
        cfg.model.head_channels = Some((8, 8));
        cfg.model.init_from = Some("runs/x".into());
        cfg.train.frames = Some(1);
        cfg.train.threads = Some(1);
        cfg.train.trunk_lr_factor = 0.5;
        cfg.train.freeze_trunk_epochs = 1;
        let written = toml::Table::try_from(&cfg).unwrap();
        let keys = crate::ExperimentConfig::known_keys();
        for (k, _) in super::super::flatten_toml(&written) {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let written_keys: Vec<String> = super::super::flatten_toml(&written)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            assert!(
                written_keys.contains(k) || k == "sweep" || k == "recipe",
                "{k} is not a key of the config"
            );
        }
    }
}
