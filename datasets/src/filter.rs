//! Selecting a subset of instances: by id, repo, difficulty, slice, and seeded shuffle.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::{DatasetError, Instance, SliceError};

/// Which instances to keep. Filters apply in field order: ids, repo, difficulty, shuffle, slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Keep only these instance ids (every one must exist). Each is trimmed and blank ones
    /// are dropped, so `--instances "a__b-1, c__d-2,"` names two.
    pub instances: Vec<String>,
    /// Keep only this repo (`owner/name`, or just `name`).
    pub repo: Option<String>,
    /// Keep only this difficulty label, e.g. `<15 min fix`.
    pub difficulty: Option<String>,
    /// Shuffle with this seed before slicing.
    pub shuffle_seed: Option<u64>,
    /// Python-style `A:B` slice over what is left.
    pub slice: Option<Slice>,
}

/// A half-open range `[start, end)`; either side may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub start: Option<usize>,
    pub end: Option<usize>,
}

/// Parses `A:B`, `A:`, `:B` or `:` (surrounding spaces allowed on either side).
impl std::str::FromStr for Slice {
    type Err = SliceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (start, end) = text.split_once(':').ok_or_else(|| SliceError::NoColon {
            text: text.to_string(),
        })?;
        let bound = |s: &str| -> Result<Option<usize>, SliceError> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .parse()
                .map(Some)
                .map_err(|source| SliceError::BadBound {
                    bound: s.to_string(),
                    text: text.to_string(),
                    source,
                })
        };
        Ok(Slice {
            start: bound(start)?,
            end: bound(end)?,
        })
    }
}

impl Filter {
    pub fn apply(&self, instances: Vec<Instance>) -> Result<Vec<Instance>, DatasetError> {
        let mut kept = self.select_ids(instances)?;
        if let Some(repo) = &self.repo {
            kept.retain(|i| i.repo == *repo || i.repo.rsplit('/').next() == Some(repo.as_str()));
        }
        if let Some(difficulty) = &self.difficulty {
            kept.retain(|i| i.difficulty.as_deref() == Some(difficulty.as_str()));
        }
        if let Some(seed) = self.shuffle_seed {
            kept.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        }
        if let Some(slice) = self.slice {
            let end = slice.end.unwrap_or(kept.len()).min(kept.len());
            let start = slice.start.unwrap_or(0).min(end);
            kept = kept.drain(start..end).collect();
        }
        Ok(kept)
    }

    fn select_ids(&self, instances: Vec<Instance>) -> Result<Vec<Instance>, DatasetError> {
        if self.instances.is_empty() {
            return Ok(instances);
        }
        let wanted: Vec<&str> = self
            .instances
            .iter()
            .map(|id| id.trim())
            .filter(|id| !id.is_empty())
            .collect();
        if wanted.is_empty() {
            return Err(DatasetError::NoInstanceIds(self.instances.clone()));
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter(|id| !instances.iter().any(|i| i.instance_id == **id))
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(DatasetError::UnknownInstances(missing));
        }
        Ok(instances
            .into_iter()
            .filter(|i| wanted.contains(&i.instance_id.as_str()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, repo: &str, difficulty: &str) -> Instance {
        serde_json::from_value(serde_json::json!({
            "instance_id": id, "repo": repo, "base_commit": "c", "difficulty": difficulty
        }))
        .unwrap()
    }

    fn sample() -> Vec<Instance> {
        (0..10)
            .map(|n| {
                let repo = if n % 2 == 0 { "a/even" } else { "b/odd" };
                let difficulty = if n < 5 { "easy" } else { "hard" };
                inst(&format!("x__y-{n}"), repo, difficulty)
            })
            .collect()
    }

    fn ids(list: &[Instance]) -> Vec<&str> {
        list.iter().map(|i| i.instance_id.as_str()).collect()
    }

    #[test]
    fn slices_parse_and_apply() {
        let filter = Filter {
            slice: Some("2:4".parse().unwrap()),
            ..Filter::default()
        };
        assert_eq!(ids(&filter.apply(sample()).unwrap()), ["x__y-2", "x__y-3"]);
        let open: Slice = ":3".parse().unwrap();
        assert_eq!(
            open,
            Slice {
                start: None,
                end: Some(3)
            }
        );
        assert!("3".parse::<Slice>().is_err());
        let err = "a:3".parse::<Slice>().unwrap_err();
        assert!(
            matches!(err, SliceError::BadBound { .. }) && err.to_string().contains("non-negative"),
            "{err}"
        );
    }

    #[test]
    fn repo_and_difficulty_combine() {
        let filter = Filter {
            repo: Some("odd".into()),
            difficulty: Some("hard".into()),
            ..Filter::default()
        };
        assert_eq!(
            ids(&filter.apply(sample()).unwrap()),
            ["x__y-5", "x__y-7", "x__y-9"]
        );
    }

    #[test]
    fn shuffle_is_seeded_and_a_permutation() {
        let shuffled = |seed| {
            Filter {
                shuffle_seed: Some(seed),
                ..Filter::default()
            }
            .apply(sample())
            .unwrap()
        };
        assert_eq!(shuffled(7), shuffled(7));
        assert_ne!(ids(&shuffled(7)), ids(&sample()));
        let mut sorted = ids(&shuffled(7))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        sorted.sort();
        let mut original = ids(&sample())
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        original.sort();
        assert_eq!(sorted, original);
    }

    #[test]
    fn unknown_ids_are_named() {
        let filter = Filter {
            instances: vec!["x__y-1".into(), "nope".into()],
            ..Filter::default()
        };
        let err = filter.apply(sample()).unwrap_err().to_string();
        assert!(err.contains("nope") && !err.contains("x__y-1"), "{err}");
    }

    #[test]
    fn ids_are_trimmed_and_blank_ones_dropped() {
        // As clap splits `--instances "x__y-1, x__y-3,"` at the commas.
        let filter = Filter {
            instances: vec!["x__y-1".into(), " x__y-3".into(), "".into()],
            ..Filter::default()
        };
        assert_eq!(ids(&filter.apply(sample()).unwrap()), ["x__y-1", "x__y-3"]);
        let blank = Filter {
            instances: vec![" ".into(), "".into()],
            ..Filter::default()
        };
        let err = blank.apply(sample()).unwrap_err();
        assert!(matches!(err, DatasetError::NoInstanceIds(_)), "{err}");
        let unknown = Filter {
            instances: vec![" nope ".into()],
            ..Filter::default()
        };
        let err = unknown.apply(sample()).unwrap_err().to_string();
        assert!(err.contains("[\"nope\"]"), "{err}");
    }
}
