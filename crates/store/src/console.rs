//! What the web console keeps: users (argon2 password hashes, made by the
//! caller), sessions and API tokens (only the SHA-256 of their secret is
//! stored), and the history of saved policies.
//!
//! The store never sees a password or a token in clear: callers hash
//! passwords (argon2id, `mxguard-web`) and pass tokens through
//! [`token_hash`] first.

use crate::sql::clean;
use crate::{now_secs, Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A console user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    /// `admin` or `auditor`.
    pub role: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A live session, as found by its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An API token's record (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub user: String,
    pub role: String,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used: Option<i64>,
}

/// One saved policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyChange {
    pub id: i64,
    pub time: i64,
    pub user: String,
    pub node: String,
    pub path: String,
    /// The whole policy as saved.
    pub text: String,
    /// Unified diff from the text before.
    pub diff: String,
    pub comment: String,
}

/// SHA-256 (hex) of a session or API token: what the tables keep.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        sqlx::query("SELECT name, role, created_at, updated_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(User {
                    name: r.try_get(0)?,
                    role: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    updated_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n.max(0) as u64)
    }

    /// A user and its password hash.
    pub async fn user_with_hash(&self, name: &str) -> Result<Option<(User, String)>> {
        let Some(r) = sqlx::query(
            "SELECT name, role, created_at, updated_at, password_hash FROM users WHERE name = $1",
        )
        .bind(name.to_string())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            User {
                name: r.try_get(0)?,
                role: r.try_get(1)?,
                created_at: r.try_get(2)?,
                updated_at: r.try_get(3)?,
            },
            r.try_get(4)?,
        )))
    }

    /// Creates a user; [`StoreError::Invalid`] when the name is taken.
    pub async fn add_user(&self, name: &str, password_hash: &str, role: &str) -> Result<()> {
        let now = now_secs();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::Invalid(format!("user {name} exists")));
        }
        sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(clean(name))
        .bind(password_hash.to_string())
        .bind(role.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates `name` only when there is no user at all (first start);
    /// returns whether it did. Safe when several nodes start at once.
    pub async fn add_first_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<bool> {
        let now = now_secs();
        let mut tx = self.begin_write().await?;
        if self.backend == crate::Backend::Postgres {
            sqlx::query("LOCK TABLE users IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if n > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(clean(name))
        .bind(password_hash.to_string())
        .bind(role.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces a user's password hash and ends its sessions; false when
    /// there is no such user.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE name = $3")
            .bind(password_hash.to_string())
            .bind(now_secs())
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Changes a user's role (sessions and tokens keep theirs capped at
    /// the user's new role when they are checked); false when no such user.
    pub async fn set_role(&self, name: &str, role: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE name = $3")
            .bind(role.to_string())
            .bind(now_secs())
            .bind(name.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a user with its sessions and tokens; false when none.
    pub async fn delete_user(&self, name: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        for t in ["sessions", "api_tokens"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {t} WHERE user_name = $1"
            )))
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let r = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a new session for `user` (token hashed here).
    pub async fn create_session(
        &self,
        token: &str,
        user: &str,
        csrf: &str,
        expires_at: i64,
        client_ip: &str,
    ) -> Result<()> {
        let now = now_secs();
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, csrf, created_at, expires_at, client_ip) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(token))
        .bind(user.to_string())
        .bind(csrf.to_string())
        .bind(now)
        .bind(expires_at)
        .bind(clean(client_ip))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session of a token, with its user's current role.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        let Some(r) = sqlx::query(
            "SELECT s.user_name, u.role, s.csrf, s.created_at, s.expires_at FROM sessions s \
             JOIN users u ON u.name = s.user_name WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash(token))
        .bind(now_secs())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(Session {
            user: r.try_get(0)?,
            role: r.try_get(1)?,
            csrf: r.try_get(2)?,
            created_at: r.try_get(3)?,
            expires_at: r.try_get(4)?,
        }))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn expire_sessions(&self) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_secs())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Records an API token (hashed here) and returns its id.
    pub async fn create_api_token(
        &self,
        token: &str,
        name: &str,
        user: &str,
        role: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let prefix: String = token.chars().take(8).collect();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (name, user_name, role, token_hash, prefix, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(clean(name))
        .bind(user.to_string())
        .bind(role.to_string())
        .bind(token_hash(token))
        .bind(prefix)
        .bind(now_secs())
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query("SELECT id FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// The token's record when it is valid (known, not expired, its user
    /// still there); the role is the lesser of the token's and the user's.
    /// Marks it used (at most once a minute).
    pub async fn api_token(&self, token: &str) -> Result<Option<ApiToken>> {
        let now = now_secs();
        let Some(r) = sqlx::query(
            "SELECT t.id, t.name, t.user_name, t.role, u.role, t.prefix, t.created_at, t.expires_at, t.last_used \
             FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let expires_at: Option<i64> = r.try_get(7)?;
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        let role: String = r.try_get(3)?;
        let user_role: String = r.try_get(4)?;
        let last_used: Option<i64> = r.try_get(8)?;
        let id: i64 = r.try_get(0)?;
        if last_used.is_none_or(|t| now - t >= 60) {
            sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(ApiToken {
            id,
            name: r.try_get(1)?,
            user: r.try_get(2)?,
            role: if role == "admin" && user_role == "admin" {
                "admin".into()
            } else {
                "auditor".into()
            },
            prefix: r.try_get(5)?,
            created_at: r.try_get(6)?,
            expires_at,
            last_used: Some(now),
        }))
    }

    /// API tokens, of one user or all, newest first.
    pub async fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        let rows =
            match user {
                Some(u) => sqlx::query(
                    "SELECT id, name, user_name, role, prefix, created_at, expires_at, last_used \
                     FROM api_tokens WHERE user_name = $1 ORDER BY id DESC",
                )
                .bind(u.to_string())
                .fetch_all(&self.pool)
                .await?,
                None => sqlx::query(
                    "SELECT id, name, user_name, role, prefix, created_at, expires_at, last_used \
                     FROM api_tokens ORDER BY id DESC",
                )
                .fetch_all(&self.pool)
                .await?,
            };
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    user: r.try_get(2)?,
                    role: r.try_get(3)?,
                    prefix: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    expires_at: r.try_get(6)?,
                    last_used: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Revokes a token; false when there was none.
    pub async fn delete_api_token(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a saved policy; returns its id.
    pub async fn add_policy_change(
        &self,
        user: &str,
        node: &str,
        path: &str,
        text: &str,
        diff: &str,
        comment: &str,
    ) -> Result<i64> {
        let now = now_secs();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO policy_history (time, user_name, node, path, text, diff, comment) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now)
        .bind(clean(user))
        .bind(clean(node))
        .bind(clean(path))
        .bind(clean(text))
        .bind(clean(diff))
        .bind(clean(comment))
        .execute(&mut *tx)
        .await?;
        let id: i64 = sqlx::query("SELECT MAX(id) FROM policy_history")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// The policy history, newest first (`limit` rows).
    pub async fn policy_history(&self, limit: u32) -> Result<Vec<PolicyChange>> {
        sqlx::query(
            "SELECT id, time, user_name, node, path, text, diff, comment FROM policy_history \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(policy_change_of)
        .collect()
    }

    /// One saved policy.
    pub async fn policy_change(&self, id: i64) -> Result<Option<PolicyChange>> {
        sqlx::query(
            "SELECT id, time, user_name, node, path, text, diff, comment FROM policy_history WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(policy_change_of)
        .transpose()
    }
}

fn policy_change_of(r: &sqlx::any::AnyRow) -> Result<PolicyChange> {
    Ok(PolicyChange {
        id: r.try_get(0)?,
        time: r.try_get(1)?,
        user: r.try_get(2)?,
        node: r.try_get(3)?,
        path: r.try_get(4)?,
        text: r.try_get(5)?,
        diff: r.try_get(6)?,
        comment: r.try_get(7)?,
    })
}
