//! The dataset parsers behind one call, with fold lists or seeded subject folds applied.

use super::*;

/// Reads the dataset and assigns splits.
pub fn inventory(req: &BuildRequest, root: &Path, ferplus: Option<&Path>) -> Result<Inventory> {
    let cfg = &req.config;
    let fi = |n: usize| cfg.frame_indices(n);
    let slots = cfg.slots();
    let mut inv = match req.kind {
        DatasetKind::Fer2013 | DatasetKind::Ferplus => {
            fer2013::inventory(&req.source, ferplus.map(|f| (f, req.ferplus_mode)), slots)?
        }
        DatasetKind::Fer2013Folders => {
            crate::datasets::fer2013_folders::inventory_folders(root, slots)?
        }
        DatasetKind::Ckplus => ckplus::inventory(
            root,
            ckplus::CkPlusOptions {
                frame_indices: &fi,
                include_neutral: cfg.include_neutral,
                dataset_landmarks: cfg.dataset_landmarks,
            },
        )?,
        DatasetKind::Oulu => {
            oulu::inventory(root, &cfg.oulu_modality, &cfg.oulu_illumination, &fi)?
        }
        DatasetKind::Ckplus48 => folders::inventory(
            root,
            "ckplus48",
            Some(&ckplus::CKPLUS_CLASSES),
            folders::NameStyle::CkPlus,
            &fi,
            slots,
        )?,
        DatasetKind::Jaffe => folders::inventory_jaffe(root, slots)?,
        DatasetKind::Rafdb => crate::datasets::rafdb::inventory(root, slots)?,
        DatasetKind::Expw => crate::datasets::expw::inventory(root, slots)?,
        DatasetKind::Affectnet => {
            crate::datasets::affectnet::inventory(root, cfg.affectnet_classes, slots)?
        }
        DatasetKind::Folders => {
            folders::inventory(root, "folders", None, folders::NameStyle::Plain, &fi, slots)?
        }
        DatasetKind::Dfew => crate::datasets::clips::inventory_dfew(root, &fi)?,
        DatasetKind::Afew => crate::datasets::clips::inventory_afew(root, &fi)?,
    };
    let rule = match (&cfg.subject_regex, &req.subjects_file) {
        (Some(_), Some(_)) => {
            return Err(PrepError::parse(
                Path::new("--subjects"),
                0,
                "give --subject-regex or --subjects, not both",
            ))
        }
        (Some(re), None) => Some(crate::subjects::SubjectRule::regex(re)?),
        (None, Some(f)) => Some(crate::subjects::SubjectRule::load_map(f)?),
        (None, None) => None,
    };
    if req.kind == DatasetKind::Folders {
        crate::subjects::assign(&mut inv, rule.as_ref());
    } else if rule.is_some() {
        return Err(PrepError::parse(
            Path::new("--subjects"),
            0,
            format!(
                "--subject-regex and --subjects are for --dataset folders; {} names its subjects itself",
                req.kind.name()
            ),
        ));
    }
    // Datasets with their own train / test splits (or, DFEW, their own folds) keep them.
    let uses_usage = matches!(
        req.kind,
        DatasetKind::Fer2013
            | DatasetKind::Ferplus
            | DatasetKind::Fer2013Folders
            | DatasetKind::Rafdb
            | DatasetKind::Affectnet
            | DatasetKind::Dfew
            | DatasetKind::Afew
    );
    if !uses_usage {
        let list = match (&req.fold_list, cfg.authors_folds) {
            (Some(p), true) => Some(match req.kind {
                DatasetKind::Oulu => {
                    let text = std::fs::read_to_string(p).map_err(|e| PrepError::Io {
                        path: p.clone(),
                        cause: e,
                    })?;
                    FoldList::parse_with(&text, p, &normalise_oulu)?
                }
                _ => FoldList::load(p)?,
            }),
            _ => None,
        };
        match (list, req.kind) {
            (Some(list), DatasetKind::Oulu) => {
                let (m, i) = (cfg.oulu_modality.clone(), cfg.oulu_illumination.clone());
                let cov = apply_fold_list(
                    &mut inv,
                    &list,
                    &|s: &str| oulu::sample_id_from_fold_list(s, &m, &i),
                    &oulu::label_from_fold_list,
                );
                inv.notes.insert(
                    "fold_list".into(),
                    serde_json::to_value(&cov).unwrap_or_default(),
                );
            }
            (Some(list), _) => {
                let neutral = cfg.include_neutral;
                let cov = apply_fold_list(
                    &mut inv,
                    &list,
                    &|s: &str| Some(s.to_string()),
                    &move |code: u16| {
                        if neutral {
                            Some(code)
                        } else {
                            code.checked_sub(1)
                        }
                    },
                );
                inv.notes.insert(
                    "fold_list".into(),
                    serde_json::to_value(&cov).unwrap_or_default(),
                );
            }
            (None, _) => subject_kfold(&mut inv, cfg.folds, cfg.seed),
        }
    }
    Ok(inv)
}
