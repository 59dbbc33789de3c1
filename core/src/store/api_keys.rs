//! Personal API keys: created with a hash of the key, listed without it, revoked by owner only.

use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::{api_key, user};
use super::{Store, StoreError, StoreResult, new_id, now};

/// How stale `last_used_at` may get before a use writes it again.
const LAST_USED_PRECISION: Duration = Duration::seconds(60);

impl Store {
    pub async fn create_api_key(
        &self,
        user_id: &str,
        name: &str,
        prefix: &str,
        key_hash: &str,
    ) -> StoreResult<api_key::Model> {
        let model = api_key::Model {
            id: new_id(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            prefix: prefix.to_string(),
            key_hash: key_hash.to_string(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        let row = api_key::ActiveModel {
            id: Set(model.id.clone()),
            user_id: Set(model.user_id.clone()),
            name: Set(model.name.clone()),
            prefix: Set(model.prefix.clone()),
            key_hash: Set(model.key_hash.clone()),
            created_at: Set(model.created_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        api_key::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(model)
    }

    /// A user's keys that are not revoked, newest first.
    pub async fn api_keys(&self, user_id: &str) -> StoreResult<Vec<api_key::Model>> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::UserId.eq(user_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .order_by_desc(api_key::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    /// Revokes one of the user's keys; another user's key or an unknown id is not found.
    pub async fn revoke_api_key(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now()))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::UserId.eq(user_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The user a live key belongs to, noting the use at minute precision.
    pub async fn user_for_api_key(
        &self,
        key_hash: &str,
    ) -> StoreResult<Option<(api_key::Model, user::Model)>> {
        let Some(key) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let at = now();
        if key
            .last_used_at
            .is_none_or(|used| at - used > LAST_USED_PRECISION)
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
                .filter(api_key::Column::Id.eq(&key.id))
                .exec(&self.db)
                .await?;
        }
        let owner = self.user(&key.user_id).await?;
        Ok(owner.map(|owner| (key, owner)))
    }
}
