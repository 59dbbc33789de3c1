//! Sessions: refresh-token families that rotate on every use and die together on reuse or
//! logout, and the single-use record of spent WebSocket tickets.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr, TransactionTrait};

use super::entities::{refresh_token, used_ticket, user};
use super::{Store, StoreResult, new_id, now};

/// How long after its end a family's tokens are kept (longer than any access token lives).
const SWEEP_MARGIN: chrono::Duration = chrono::Duration::days(1);

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token was live; it is now used and its successor carries the same family and expiry.
    Rotated {
        user_id: String,
        family_id: String,
        expires_at: DateTime<Utc>,
    },
    /// The token had been used before: the whole family is now revoked.
    Reused { user_id: String, family_id: String },
    /// Unknown, expired or revoked.
    Invalid,
}

/// A new session's family and its absolute end.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub family_id: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Starts a refresh family for a user with its first token's hash. Tokens a day past
    /// their family's end are swept on the way, so the table does not grow without bound.
    pub async fn start_session(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<NewSession> {
        // A day past the end, so no access token of a revoked family (4 h at most) outlives
        // the record of its revocation.
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::ExpiresAt.lt(now() - SWEEP_MARGIN))
            .exec(&self.db)
            .await?;
        let family_id = new_id();
        refresh_token::Entity::insert(token_row(user_id, &family_id, token_hash, expires_at))
            .exec_without_returning(&self.db)
            .await?;
        Ok(NewSession {
            family_id,
            expires_at,
        })
    }

    /// Spends a refresh token and stores its successor in one transaction. Only one of many
    /// concurrent presentations can win the guarded update; the others see a used token.
    pub async fn rotate_refresh(
        &self,
        presented_hash: &str,
        successor_hash: &str,
    ) -> StoreResult<RefreshOutcome> {
        let txn = self.db.begin().await?;
        let at = now();
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::TokenHash.eq(presented_hash))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .filter(refresh_token::Column::ExpiresAt.gt(at))
            .exec(&txn)
            .await?;
        let row = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(presented_hash))
            .one(&txn)
            .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        if spent.rows_affected == 1 {
            refresh_token::Entity::insert(token_row(
                &row.user_id,
                &row.family_id,
                successor_hash,
                row.expires_at,
            ))
            .exec_without_returning(&txn)
            .await?;
            txn.commit().await?;
            return Ok(RefreshOutcome::Rotated {
                user_id: row.user_id,
                family_id: row.family_id,
                expires_at: row.expires_at,
            });
        }
        txn.commit().await?;
        // FIXME(refresh-race): strict reuse detection: two tabs refreshing with one cookie at
        // the same instant look like a stolen token and end the session.
        if row.used_at.is_some() {
            self.revoke_family(&row.family_id).await?;
            return Ok(RefreshOutcome::Reused {
                user_id: row.user_id,
                family_id: row.family_id,
            });
        }
        Ok(RefreshOutcome::Invalid)
    }

    /// The family and user a refresh token belongs to, whatever its state.
    pub async fn refresh_family(&self, token_hash: &str) -> StoreResult<Option<(String, String)>> {
        Ok(refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(token_hash))
            .one(&self.db)
            .await?
            .map(|row| (row.user_id, row.family_id)))
    }

    /// Revokes every token of a family; returns how many were still live.
    pub async fn revoke_family(&self, family_id: &str) -> StoreResult<u64> {
        let result = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(now()))
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// True once a family was revoked (logout or reuse); access tokens of the family stop too.
    pub async fn family_revoked(&self, family_id: &str) -> StoreResult<bool> {
        Ok(refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(family_id))
            .filter(refresh_token::Column::RevokedAt.is_not_null())
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The user behind a session, while the user exists and the session was not revoked.
    pub async fn session_user(
        &self,
        user_id: &str,
        family_id: &str,
    ) -> StoreResult<Option<user::Model>> {
        if self.family_revoked(family_id).await? {
            return Ok(None);
        }
        self.user(user_id).await
    }

    /// Records a WebSocket ticket as spent; false when it was spent before. Expired records
    /// are swept on the way, so the table holds only tickets that could still be replayed.
    pub async fn spend_ticket(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        used_ticket::Entity::delete_many()
            .filter(used_ticket::Column::ExpiresAt.lt(now()))
            .exec(&self.db)
            .await?;
        let row = used_ticket::ActiveModel {
            jti: Set(jti.to_string()),
            expires_at: Set(expires_at),
        };
        match used_ticket::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn token_row(
    user_id: &str,
    family_id: &str,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id.to_string()),
        family_id: Set(family_id.to_string()),
        token_hash: Set(token_hash.to_string()),
        issued_at: Set(now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
}
