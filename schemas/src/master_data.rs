//! Sector reference data, shipped as JSON files under `schemas/master-data/`
//! and embedded as the default; a deployment may load a replacement folder without a rebuild.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliceDistrict {
    pub code: String,
    pub slug: String,
    pub name: String,
    pub default_court: String,
    #[serde(default)]
    pub assumed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Court {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub code: String,
    pub name: String,
    pub region: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Law {
    /// Canonical `law` value, e.g. `straffeloven`.
    pub id: String,
    /// Four-letter code in prosecution-flat.
    pub flat_code: String,
    /// The form the gateway writes, e.g. `Strfl.`.
    pub short_form: String,
    /// Other spellings officers use.
    pub also_written: Vec<String>,
}

/// Errors loading master data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterDataError {
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// A file is not the expected JSON.
    #[error("{file}: {source}")]
    Parse {
        file: String,
        source: serde_json::Error,
    },
    /// A code appears twice, or a reference points nowhere.
    #[error("{file}: {message}")]
    Inconsistent { file: String, message: String },
}

/// All reference lists, indexed for lookup.
#[derive(Debug, Clone)]
pub struct MasterData {
    districts_by_code: BTreeMap<String, PoliceDistrict>,
    courts: BTreeMap<String, Court>,
    institutions: BTreeMap<String, Institution>,
    laws: Vec<Law>,
    /// Every spelling of every law (its id, its short form and each `also_written`) in the
    /// form typed text is compared in ([`MasterData::folded`]), with the law's index; longest
    /// first, then alphabetically, without repeats.
    law_spellings: Vec<(String, usize)>,
}

const DISTRICTS: &str = include_str!("../master-data/police-districts.json");
const COURTS: &str = include_str!("../master-data/courts.json");
const INSTITUTIONS: &str = include_str!("../master-data/institutions.json");
const LAWS: &str = include_str!("../master-data/laws.json");

impl MasterData {
    /// The lists shipped with this build.
    pub fn embedded() -> Self {
        Self::from_sources(DISTRICTS, COURTS, INSTITUTIONS, LAWS)
            .expect("embedded master data is checked by a test")
    }

    /// Loads a replacement folder holding the same four files.
    pub fn load_dir(dir: &Path) -> Result<Self, MasterDataError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|source| MasterDataError::Read {
                file: name.to_string(),
                source,
            })
        };
        Self::from_sources(
            &read("police-districts.json")?,
            &read("courts.json")?,
            &read("institutions.json")?,
            &read("laws.json")?,
        )
    }

    fn from_sources(
        districts: &str,
        courts: &str,
        institutions: &str,
        laws: &str,
    ) -> Result<Self, MasterDataError> {
        fn parse<T: serde::de::DeserializeOwned>(
            file: &str,
            text: &str,
        ) -> Result<T, MasterDataError> {
            serde_json::from_str(text).map_err(|source| MasterDataError::Parse {
                file: file.to_string(),
                source,
            })
        }
        fn index<T>(
            file: &str,
            items: Vec<T>,
            key: impl Fn(&T) -> String,
        ) -> Result<BTreeMap<String, T>, MasterDataError> {
            let mut map = BTreeMap::new();
            for item in items {
                let k = key(&item);
                if map.insert(k.clone(), item).is_some() {
                    return Err(MasterDataError::Inconsistent {
                        file: file.to_string(),
                        message: format!("code {k} appears twice"),
                    });
                }
            }
            Ok(map)
        }
        let d: Vec<PoliceDistrict> = parse("police-districts.json", districts)?;
        let c: Vec<Court> = parse("courts.json", courts)?;
        let i: Vec<Institution> = parse("institutions.json", institutions)?;
        let laws: Vec<Law> = parse("laws.json", laws)?;
        let data = Self {
            districts_by_code: index("police-districts.json", d, |x| x.code.clone())?,
            courts: index("courts.json", c, |x| x.code.clone())?,
            institutions: index("institutions.json", i, |x| x.code.clone())?,
            law_spellings: Self::spellings(&laws),
            laws,
        };
        for d in data.districts_by_code.values() {
            if !data.courts.contains_key(&d.default_court) {
                return Err(MasterDataError::Inconsistent {
                    file: "police-districts.json".into(),
                    message: format!(
                        "district {} names unknown court {}",
                        d.code, d.default_court
                    ),
                });
            }
        }
        Ok(data)
    }

    pub fn district_by_code(&self, code: &str) -> Option<&PoliceDistrict> {
        self.districts_by_code.get(code)
    }
    pub fn district_by_slug(&self, slug: &str) -> Option<&PoliceDistrict> {
        self.districts_by_code.values().find(|d| d.slug == slug)
    }
    pub fn court(&self, code: &str) -> Option<&Court> {
        self.courts.get(code)
    }
    pub fn institution(&self, code: &str) -> Option<&Institution> {
        self.institutions.get(code)
    }
    pub fn law(&self, id: &str) -> Option<&Law> {
        self.laws.iter().find(|l| l.id == id)
    }
    pub fn law_by_flat_code(&self, code: &str) -> Option<&Law> {
        self.laws.iter().find(|l| l.flat_code == code)
    }
    pub fn laws(&self) -> &[Law] {
        &self.laws
    }

    /// Text as law names are compared: without whitespace, lowercased.
    pub fn folded(text: &str) -> String {
        text.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    }

    /// Every spelling of every law, folded and without a trailing dot, longest first.
    pub fn law_spellings(&self) -> impl Iterator<Item = (&str, &Law)> {
        self.law_spellings
            .iter()
            .map(|(s, i)| (s.as_str(), &self.laws[*i]))
    }

    fn spellings(laws: &[Law]) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = laws
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                std::iter::once(&l.id)
                    .chain(std::iter::once(&l.short_form))
                    .chain(l.also_written.iter())
                    .map(move |n| (Self::folded(n).trim_end_matches('.').to_string(), i))
            })
            .collect();
        v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        v.dedup_by(|a, b| a.0 == b.0);
        v
    }
    pub fn districts(&self) -> impl Iterator<Item = &PoliceDistrict> {
        self.districts_by_code.values()
    }
    pub fn courts(&self) -> impl Iterator<Item = &Court> {
        self.courts.values()
    }
    pub fn institutions(&self) -> impl Iterator<Item = &Institution> {
        self.institutions.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_lists_load_and_match_the_spec_counts() {
        let m = MasterData::embedded();
        assert_eq!(m.districts().count(), 12);
        assert_eq!(m.courts().count(), 27);
        assert_eq!(m.institutions().count(), 23);
        assert_eq!(m.laws().len(), 4);
        assert_eq!(m.district_by_code("1470").unwrap().slug, "koebenhavn");
        assert_eq!(
            m.district_by_slug("vestegnen").unwrap().default_court,
            "GLO"
        );
        assert!(m.court("XXX").is_none());
        assert!(m.institutions().all(|i| i.code.len() <= 8));
    }

    #[test]
    fn a_replacement_folder_is_loaded_and_checked() {
        let dir = std::env::temp_dir().join(format!("jxg-md-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("police-districts.json"), DISTRICTS).unwrap();
        std::fs::write(dir.join("courts.json"), r#"[{"code":"KBH","name":"x"}]"#).unwrap();
        std::fs::write(dir.join("institutions.json"), INSTITUTIONS).unwrap();
        std::fs::write(dir.join("laws.json"), LAWS).unwrap();
        let err = MasterData::load_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("unknown court"), "{err}");
        std::fs::write(dir.join("courts.json"), COURTS).unwrap();
        assert!(MasterData::load_dir(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
