//! The scorecards this process knows: the built-in standard plus a configured folder.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Rubric, RubricError};

/// Where a scorecard came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RubricSource {
    /// Compiled into the binary.
    Builtin,
    /// A file in the configured folder.
    File(String),
    /// Posted through the API.
    Api,
}

impl RubricSource {
    /// The stored form (`builtin`, the file path, `api`).
    pub fn as_origin(&self) -> String {
        match self {
            RubricSource::Builtin => "builtin".into(),
            RubricSource::File(path) => path.clone(),
            RubricSource::Api => "api".into(),
        }
    }
}

/// A scorecard with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct LoadedRubric {
    /// The parsed scorecard.
    pub rubric: Rubric,
    /// Its TOML text.
    pub text: String,
    /// Where it came from.
    pub source: RubricSource,
}

/// Scorecards by `(id, language)`.
#[derive(Debug, Clone, Default)]
pub struct RubricSet {
    rubrics: BTreeMap<(String, String), LoadedRubric>,
}

const BUILTIN: [(&str, &str); 2] = [
    (
        "sales-standard.en.toml",
        include_str!("../../rubrics/sales-standard.en.toml"),
    ),
    (
        "sales-standard.ru.toml",
        include_str!("../../rubrics/sales-standard.ru.toml"),
    ),
];

impl RubricSet {
    /// The scorecards compiled into the binary.
    pub fn builtin() -> Self {
        let mut set = Self::default();
        for (name, text) in BUILTIN {
            // The built-in files are checked by the unit tests; a broken one is a build bug.
            match Rubric::parse(text, name) {
                Ok(rubric) => set.insert(LoadedRubric {
                    rubric,
                    text: text.to_string(),
                    source: RubricSource::Builtin,
                }),
                Err(e) => tracing::error!("built-in scorecard refused: {e}"),
            }
        }
        set
    }

    /// The built-in scorecards, then every `*.toml` in `dir` (which replace built-in ones with
    /// the same id and language). A missing folder is fine; a broken file is an error, so a
    /// typo never silently falls back to the default standard.
    pub fn load(dir: Option<&Path>) -> Result<Self, RubricError> {
        let mut set = Self::builtin();
        let Some(dir) = dir else { return Ok(set) };
        if !dir.is_dir() {
            return Ok(set);
        }
        let io = |source| RubricError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(io)?;
            let rubric = Rubric::parse(&text, &origin)?;
            set.insert(LoadedRubric {
                rubric,
                text,
                source: RubricSource::File(origin),
            });
        }
        Ok(set)
    }

    fn insert(&mut self, loaded: LoadedRubric) {
        let key = (loaded.rubric.id.clone(), loaded.rubric.language.clone());
        self.rubrics.insert(key, loaded);
    }

    /// The scorecard `id` in `language`.
    pub fn get(&self, id: &str, language: &str) -> Option<&LoadedRubric> {
        self.rubrics.get(&(id.to_string(), language.to_string()))
    }

    /// The scorecard `id` in `language`, else in any language it exists in.
    pub fn get_or_any_language(&self, id: &str, language: &str) -> Option<&LoadedRubric> {
        self.get(id, language)
            .or_else(|| self.iter().find(|r| r.rubric.id == id))
    }

    /// Every scorecard.
    pub fn iter(&self) -> impl Iterator<Item = &LoadedRubric> {
        self.rubrics.values()
    }
}
