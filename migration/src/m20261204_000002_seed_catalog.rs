//! Seeds the catalog tables from the project's own copy of the catalog.

use sea_orm_migration::prelude::*;
use serde_json::Value;

use crate::m20261204_000001_create_schema::{CatalogColumn, CatalogTable};

const CATALOG_JSON: &str = include_str!("../../core/data/catalog.json");

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let entries: Vec<Value> = serde_json::from_str(CATALOG_JSON)
            .map_err(|e| DbErr::Migration(format!("catalog.json: {e}")))?;
        for (kind, table) in [
            ("technique", CatalogTable::Techniques),
            ("tactic", CatalogTable::Tactics),
            ("personality", CatalogTable::Personalities),
        ] {
            let mut insert = Query::insert();
            insert.into_table(table).columns([
                CatalogColumn::Id,
                CatalogColumn::Name,
                CatalogColumn::NameEn,
                CatalogColumn::Summary,
                CatalogColumn::Traits,
            ]);
            for entry in entries.iter().filter(|e| e["kind"] == kind) {
                let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
                insert.values_panic([
                    text("id").into(),
                    text("name").into(),
                    text("name_en").into(),
                    text("summary").into(),
                    traits(entry).into(),
                ]);
            }
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CatalogTable::Techniques,
            CatalogTable::Tactics,
            CatalogTable::Personalities,
        ] {
            manager
                .exec_stmt(Query::delete().from_table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The numeric and label traits of an entry, kept as one JSON object.
fn traits(entry: &Value) -> Value {
    const KEYS: [&str; 8] = [
        "openness",
        "conscientiousness",
        "extraversion",
        "agreeableness",
        "neuroticism",
        "power_level",
        "assertiveness",
        "cooperation",
    ];
    let map = KEYS
        .iter()
        .filter_map(|k| entry.get(*k).map(|v| (String::from(*k), v.clone())))
        .collect();
    Value::Object(map)
}
