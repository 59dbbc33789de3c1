//! Batch expansion: the cross product of techniques, tactics, personalities and repetitions.

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, DEFAULT_PERSONALITY};
use super::error::ValidationError;

/// The most runs one batch may hold.
pub const MAX_BATCH_RUNS: usize = 100_000;

/// What one run of a batch plays: a numbered combination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// 1-based, stable: technique, then tactic, then personality, then repetition.
    pub run_number: u32,
    pub technique_id: String,
    pub tactic_id: String,
    pub personality_id: String,
    /// 1-based.
    pub repetition: u32,
}

/// A batch request after defaults are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPlan {
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    pub personalities: Vec<String>,
    pub repetitions: u32,
}

impl BatchPlan {
    /// Resolves personalities (`all` means the catalog's; none means `default`) and checks ids.
    pub fn resolve(
        techniques: Vec<String>,
        tactics: Vec<String>,
        personalities: Vec<String>,
        repetitions: u32,
        catalog: &Catalog,
    ) -> Result<Self, ValidationError> {
        check_ids(&techniques, "techniques", |id| {
            catalog.technique(id).is_some()
        })?;
        check_ids(&tactics, "tactics", |id| catalog.tactic(id).is_some())?;
        let wants_all = |p: &String| p == "all" || p == "all-personalities";
        check_ids(&personalities, "personalities", |id| {
            id == "all"
                || id == "all-personalities"
                || id == DEFAULT_PERSONALITY
                || catalog.personality(id).is_some()
        })
        .or_else(|e| {
            if personalities.is_empty() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let personalities = if personalities.iter().any(wants_all) {
            catalog.personality_ids()
        } else if personalities.is_empty() {
            vec![DEFAULT_PERSONALITY.to_string()]
        } else {
            personalities
        };
        if !(1..=MAX_BATCH_RUNS as u32).contains(&repetitions) {
            return Err(ValidationError::new(
                "repetitions",
                format!("must be between 1 and {MAX_BATCH_RUNS}"),
            ));
        }
        let plan = Self {
            techniques,
            tactics,
            personalities,
            repetitions,
        };
        if plan.total() > MAX_BATCH_RUNS {
            return Err(ValidationError::new(
                "repetitions",
                format!(
                    "the batch would hold {} runs; the limit is {MAX_BATCH_RUNS}",
                    plan.total()
                ),
            ));
        }
        Ok(plan)
    }

    pub fn total(&self) -> usize {
        self.techniques.len()
            * self.tactics.len()
            * self.personalities.len()
            * self.repetitions as usize
    }

    /// Every run of the batch, numbered in the stable nested order.
    pub fn expand(&self) -> Vec<RunSpec> {
        let mut runs = Vec::with_capacity(self.total());
        for technique in &self.techniques {
            for tactic in &self.tactics {
                for personality in &self.personalities {
                    for repetition in 1..=self.repetitions {
                        runs.push(RunSpec {
                            run_number: runs.len() as u32 + 1,
                            technique_id: technique.clone(),
                            tactic_id: tactic.clone(),
                            personality_id: personality.clone(),
                            repetition,
                        });
                    }
                }
            }
        }
        runs
    }
}

fn check_ids(
    ids: &[String],
    field: &str,
    known: impl Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if ids.is_empty() {
        return Err(ValidationError::new(field, "select at least one"));
    }
    for (i, id) in ids.iter().enumerate() {
        if !known(id) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("unknown id '{id}'"),
            ));
        }
        if ids[..i].contains(id) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                "duplicate id",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expansion_is_the_cross_product_in_stable_order() {
        let catalog = Catalog::builtin();
        let plan = BatchPlan::resolve(
            ids(&["technique.legitimieren", "technique.konsultieren"]),
            ids(&[
                "tactic.reziprozitaet",
                "tactic.zeitdruck",
                "tactic.framing_effekt",
            ]),
            vec![],
            2,
            &catalog,
        )
        .expect("valid plan");
        let runs = plan.expand();
        assert_eq!(runs.len(), 12);
        assert_eq!(runs[0].run_number, 1);
        assert_eq!(runs[0].personality_id, DEFAULT_PERSONALITY);
        assert_eq!(
            (runs[1].tactic_id.as_str(), runs[1].repetition),
            ("tactic.reziprozitaet", 2)
        );
        assert_eq!(runs[2].tactic_id, "tactic.zeitdruck");
        assert_eq!(runs[6].technique_id, "technique.konsultieren");
        assert_eq!(runs[11].run_number, 12);
    }

    #[test]
    fn all_personalities_expand_to_the_catalog() {
        let catalog = Catalog::builtin();
        let plan = BatchPlan::resolve(
            ids(&["technique.legitimieren"]),
            ids(&["tactic.zeitdruck"]),
            ids(&["all"]),
            1,
            &catalog,
        )
        .expect("valid plan");
        assert_eq!(plan.expand().len(), 14);
    }

    #[test]
    fn unknown_tactic_names_its_position() {
        let err = BatchPlan::resolve(
            ids(&["technique.legitimieren"]),
            ids(&["tactic.zeitdruck", "tactic.nope"]),
            vec![],
            1,
            &Catalog::builtin(),
        )
        .expect_err("an unknown tactic is rejected");
        assert_eq!(err.field, "tactics[1]");
    }
}
