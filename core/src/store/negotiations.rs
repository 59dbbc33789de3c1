//! Negotiations: created from a validated scenario, always read scoped to their owner.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::domain::Scenario;

use super::entities::negotiation;
use super::{Store, StoreError, StoreResult, new_id, now};

impl Store {
    pub async fn create_negotiation(
        &self,
        user_id: &str,
        input: Value,
        scenario: &Scenario,
    ) -> StoreResult<negotiation::Model> {
        let at = now();
        let model = negotiation::ActiveModel {
            id: Set(new_id()),
            user_id: Set(user_id.to_string()),
            title: Set(scenario.title.clone()),
            description: Set(Some(scenario.context.clone()).filter(|d| !d.is_empty())),
            status: Set("planned".into()),
            input: Set(input),
            scenario: Set(
                serde_json::to_value(scenario).map_err(|e| StoreError::Corrupt(e.to_string()))?
            ),
            created_at: Set(at),
            updated_at: Set(at),
            started_at: Set(None),
            completed_at: Set(None),
        };
        let id = model.id.clone().unwrap();
        negotiation::Entity::insert(model)
            .exec_without_returning(&self.db)
            .await?;
        self.negotiation(user_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The owner's negotiation, or `None` for a missing id or another user's.
    pub async fn negotiation(
        &self,
        user_id: &str,
        id: &str,
    ) -> StoreResult<Option<negotiation::Model>> {
        Ok(negotiation::Entity::find_by_id(id.to_string())
            .filter(negotiation::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?)
    }

    pub async fn negotiations(
        &self,
        user_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<negotiation::Model>> {
        Ok(negotiation::Entity::find()
            .filter(negotiation::Column::UserId.eq(user_id))
            .order_by_desc(negotiation::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The validated scenario stored with a negotiation.
    pub fn scenario_of(model: &negotiation::Model) -> StoreResult<Scenario> {
        serde_json::from_value(model.scenario.clone())
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

impl Store {
    /// A negotiation by id alone, for workers.
    pub async fn negotiation_unscoped(&self, id: &str) -> StoreResult<Option<negotiation::Model>> {
        Ok(negotiation::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }
}
