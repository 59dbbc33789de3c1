//! Users: creation with a unique name, and look-ups.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};

use super::entities::user;
use super::{Store, StoreError, StoreResult, new_id, now};

impl Store {
    /// Creates a user; a taken username is a conflict.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> StoreResult<user::Model> {
        let model = user::ActiveModel {
            id: Set(new_id()),
            username: Set(username.to_string()),
            password_hash: Set(password_hash.to_string()),
            created_at: Set(now()),
            tokens_valid_after: Set(None),
        };
        match user::Entity::insert(model.clone())
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => self
                .user(&model.id.unwrap())
                .await?
                .ok_or(StoreError::NotFound),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(StoreError::Conflict("username is taken".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<user::Model>> {
        Ok(user::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?)
    }

    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<user::Model>> {
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(&self.db)
            .await?)
    }
}
