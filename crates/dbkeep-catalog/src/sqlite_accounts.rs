//! Users, sessions and API tokens in the SQLite catalog.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::sqlite::SqliteCatalog;
use crate::sqlite::time;
use dbkeep_model::accounts::{
    Accounts, ApiToken, Databases, Grant, LoginFailures, NewToken, OIDC_SOURCE, OidcLogin, Session,
    SessionInfo, TokenGrant, TwoFactor, User, UserInfo,
};
use dbkeep_model::catalog::format_time;
use dbkeep_model::error::Result;

impl Accounts for SqliteCatalog {
    fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        grant: &Grant,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO users (name, password_hash, created_at, role, databases) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                password_hash,
                format_time(&now),
                grant.role.as_str(),
                grant.databases.stored()
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(User::new(conn.last_insert_rowid(), name, grant, false))
    }

    fn set_grant(&self, name: &str, grant: &Grant) -> Result<bool> {
        self.change_user(
            "UPDATE users SET role = ?2, databases = ?3 WHERE name = ?1",
            params![name, grant.role.as_str(), grant.databases.stored()],
        )
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        // Whoever knew the old password is logged out everywhere.
        self.change_user(
            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
            params![name, password_hash],
        )
    }

    fn delete_user(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?1)",
            [name],
        )
        .map_err(|e| self.err(e))?;
        let n = tx
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>> {
        self.conn()
            .query_row(
                "SELECT id, name, role, databases, totp_enabled, source, password_hash FROM users WHERE name = ?1",
                [name],
                |r| Ok((user(r, 0)?, r.get(6)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn users(&self) -> Result<Vec<UserInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, role, databases, created_at, source FROM users ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(UserInfo {
                    name: r.get(0)?,
                    grant: grant(r, 1)?,
                    created_at: time(3, Some(r.get(3)?))?.unwrap_or_default(),
                    source: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn user_count(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn add_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_sha256, user_id, csrf, format_time(&now), format_time(&expires)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        self.conn()
            .query_row(
                "SELECT u.id, u.name, u.role, u.databases, u.totp_enabled, u.source, s.csrf_token, s.expires_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
                params![token_sha256, format_time(&now)],
                |r| {
                    Ok(Session {
                        user: user(r, 0)?,
                        csrf_token: r.get(6)?,
                        expires_at: time(7, Some(r.get(7)?))?.unwrap_or_default(),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn delete_session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1 OR expires_at <= ?2",
                params![token_sha256, format_time(&now)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn add_token(&self, token: &NewToken<'_>, now: DateTime<Utc>) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO api_tokens (name, token_sha256, created_at, role, databases, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.name,
                    token.token_sha256,
                    format_time(&now),
                    token.grant.role.as_str(),
                    token.grant.databases.stored(),
                    token.expires_at.as_ref().map(format_time)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn revoke_token(&self, name: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM api_tokens WHERE name = ?1", [name])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn use_token(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<TokenGrant>> {
        // Its use is noted at most once a minute: a write per request would serialize them.
        let conn = self.conn();
        let a_minute_ago = now - chrono::Duration::minutes(1);
        let now_text = format_time(&now);
        conn.execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE token_sha256 = ?1
             AND (last_used_at IS NULL OR last_used_at < ?3)
             AND (expires_at IS NULL OR expires_at > ?2)",
            params![token_sha256, now_text, format_time(&a_minute_ago)],
        )
        .map_err(|e| self.err(e))?;
        conn.query_row(
            "SELECT id, name, role, databases FROM api_tokens WHERE token_sha256 = ?1
             AND (expires_at IS NULL OR expires_at > ?2)",
            params![token_sha256, now_text],
            |r| {
                Ok(TokenGrant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    grant: grant(r, 2)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    fn tokens(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name, created_at, last_used_at, role, databases, expires_at
                 FROM api_tokens ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ApiToken {
                    name: r.get(0)?,
                    created_at: time(1, Some(r.get(1)?))?.unwrap_or_default(),
                    last_used_at: time(2, r.get(2)?)?,
                    grant: grant(r, 3)?,
                    expires_at: time(5, r.get(5)?)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn sessions(&self, now: DateTime<Utc>) -> Result<Vec<SessionInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT u.name, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.expires_at > ?1 ORDER BY u.name, s.created_at",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([format_time(&now)], |r| {
                Ok(SessionInfo {
                    user: r.get(0)?,
                    created_at: time(1, Some(r.get(1)?))?.unwrap_or_default(),
                    expires_at: time(2, Some(r.get(2)?))?.unwrap_or_default(),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    fn end_sessions(&self, name: &str) -> Result<u64> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?1)",
                [name],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactor>> {
        self.conn()
            .query_row(
                "SELECT totp_secret, totp_enabled, totp_last_step FROM users
                 WHERE id = ?1 AND totp_secret IS NOT NULL",
                [user_id],
                |r| {
                    Ok(TwoFactor {
                        secret: r.get(0)?,
                        enabled: r.get(1)?,
                        last_step: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_two_factor(&self, user_id: i64, secret: Option<&str>, enabled: bool) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE users SET totp_secret = ?2, totp_enabled = ?3 WHERE id = ?1",
            params![user_id, secret, enabled && secret.is_some()],
        )
        .map_err(|e| self.err(e))?;
        if secret.is_none() {
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND totp_last_step < ?2",
                params![user_id, step],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn set_recovery_codes(&self, user_id: i64, digests: &[String]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])
            .map_err(|e| self.err(e))?;
        for digest in digests {
            tx.execute(
                "INSERT INTO recovery_codes (user_id, code_sha256) VALUES (?1, ?2)",
                params![user_id, digest],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn use_recovery_code(&self, user_id: i64, digest: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE recovery_codes SET used_at = ?3
                 WHERE user_id = ?1 AND code_sha256 = ?2 AND used_at IS NULL",
                params![user_id, digest, format_time(&now)],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn recovery_codes_left(&self, user_id: i64) -> Result<u64> {
        self.conn()
            .query_row(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                [user_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn add_pending_login(
        &self,
        token_sha256: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO pending_logins (token_sha256, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_sha256, user_id, format_time(&now), format_time(&expires)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        self.conn()
            .query_row(
                "SELECT u.id, u.name, u.role, u.databases, u.totp_enabled, u.source
                 FROM pending_logins p JOIN users u ON u.id = p.user_id
                 WHERE p.token_sha256 = ?1 AND p.expires_at > ?2",
                params![token_sha256, format_time(&now)],
                |r| user(r, 0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn add_oidc_login(
        &self,
        state_sha256: &str,
        login: &OidcLogin,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO oidc_logins (state_sha256, verifier, nonce, next, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    state_sha256,
                    login.verifier,
                    login.nonce,
                    login.next,
                    format_time(&now),
                    format_time(&expires)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn take_oidc_login(&self, state_sha256: &str, now: DateTime<Utc>) -> Result<Option<OidcLogin>> {
        let conn = self.conn();
        let now = format_time(&now);
        conn.execute("DELETE FROM oidc_logins WHERE expires_at <= ?1", [&now])
            .map_err(|e| self.err(e))?;
        conn.query_row(
            "DELETE FROM oidc_logins WHERE state_sha256 = ?1 RETURNING verifier, nonce, next",
            [state_sha256],
            |r| {
                Ok(OidcLogin {
                    verifier: r.get(0)?,
                    nonce: r.get(1)?,
                    next: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    fn add_sign_on_user(&self, name: &str, grant: &Grant, now: DateTime<Utc>) -> Result<User> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO users (name, password_hash, created_at, role, databases, source)
             VALUES (?1, '!', ?2, ?3, ?4, ?5)",
            params![
                name,
                format_time(&now),
                grant.role.as_str(),
                grant.databases.stored(),
                OIDC_SOURCE
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(User::new(conn.last_insert_rowid(), name, grant, true))
    }

    fn end_pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM pending_logins WHERE token_sha256 = ?1 OR expires_at <= ?2",
                params![token_sha256, format_time(&now)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl SqliteCatalog {
    /// Runs `update` on the user named by its first parameter and ends their sessions, in one
    /// transaction; false when there is no such user.
    fn change_user(&self, update: &str, params: &[&dyn rusqlite::ToSql]) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let n = tx.execute(update, params).map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?1)",
            [params[0]],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n == 1)
    }
}

/// A user from the columns `id, name, role, databases, totp_enabled, source` starting at
/// `first`.
fn user(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(first)?,
        name: r.get(first + 1)?,
        grant: grant(r, first + 2)?,
        two_factor: r.get(first + 4)?,
        single_sign_on: r.get::<_, String>(first + 5)? == OIDC_SOURCE,
    })
}

/// A grant from the columns `role, databases` starting at `first`. A role the catalog does
/// not know (written by a newer dbkeep) is read as the least one.
pub(crate) fn grant(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Grant> {
    let role: String = r.get(first)?;
    let databases: Option<String> = r.get(first + 1)?;
    Ok(Grant {
        role: role.parse().unwrap_or(dbkeep_model::accounts::Role::Viewer),
        databases: Databases::from_stored(databases.as_deref()),
    })
}

impl LoginFailures for SqliteCatalog {
    fn record_login_failure(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
        keep: std::time::Duration,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let oldest = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|keep| now.checked_sub_signed(keep))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        tx.execute(
            "DELETE FROM login_failures WHERE at < ?1",
            [format_time(&oldest)],
        )
        .map_err(|e| self.err(e))?;
        for key in keys {
            tx.execute(
                "INSERT INTO login_failures (key, at) VALUES (?1, ?2)",
                params![key, format_time(&now)],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn login_failures_since(&self, keys: &[String], since: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn();
        let mut most = 0u64;
        for key in keys {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM login_failures WHERE key = ?1 AND at >= ?2",
                    params![key, format_time(&since)],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            most = most.max(u64::try_from(n).unwrap_or(0));
        }
        Ok(most)
    }
}
