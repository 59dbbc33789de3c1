//! The catalog of influence techniques, negotiation tactics and counterpart personalities.

use serde::{Deserialize, Serialize};

/// The catalog shipped with Arian, compiled into the binary.
pub const CATALOG_JSON: &str = include_str!("../../data/catalog.json");

/// The personality id used when a scenario names none: a neutral counterpart.
pub const DEFAULT_PERSONALITY: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Technique,
    Tactic,
    Personality,
}

/// One catalog entry. Big Five traits are 0..1 where the source gives them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub id: String,
    pub kind: EntryKind,
    pub name: String,
    pub name_en: String,
    pub summary: String,
    #[serde(default)]
    pub openness: Option<f64>,
    #[serde(default)]
    pub conscientiousness: Option<f64>,
    #[serde(default)]
    pub extraversion: Option<f64>,
    #[serde(default)]
    pub agreeableness: Option<f64>,
    #[serde(default)]
    pub neuroticism: Option<f64>,
    #[serde(default)]
    pub assertiveness: Option<String>,
    #[serde(default)]
    pub cooperation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Self {
        Self::from_json(CATALOG_JSON).expect("the shipped catalog.json is valid")
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        Ok(Self {
            entries: serde_json::from_str(json)?,
        })
    }

    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn of_kind(&self, kind: EntryKind) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }

    pub fn technique(&self, id: &str) -> Option<&CatalogEntry> {
        self.find(EntryKind::Technique, id)
    }

    pub fn tactic(&self, id: &str) -> Option<&CatalogEntry> {
        self.find(EntryKind::Tactic, id)
    }

    /// A personality entry; `default` is the neutral counterpart and has no entry.
    pub fn personality(&self, id: &str) -> Option<&CatalogEntry> {
        self.find(EntryKind::Personality, id)
    }

    /// Every personality id of the catalog, in catalog order.
    pub fn personality_ids(&self) -> Vec<String> {
        self.of_kind(EntryKind::Personality)
            .map(|e| e.id.clone())
            .collect()
    }

    fn find(&self, kind: EntryKind, id: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.kind == kind && e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_kind() {
        let catalog = Catalog::builtin();
        assert_eq!(catalog.of_kind(EntryKind::Technique).count(), 10);
        assert_eq!(catalog.of_kind(EntryKind::Tactic).count(), 44);
        assert_eq!(catalog.of_kind(EntryKind::Personality).count(), 14);
        assert!(catalog.technique("technique.legitimieren").is_some());
        assert!(catalog.tactic("technique.legitimieren").is_none());
    }
}
