//! Users, sessions and API tokens in the PostgreSQL catalog.

use chrono::{DateTime, Utc};

use crate::postgres::PostgresCatalog;
use crate::postgres_rows::{RowResult, ms, storable, storable_key, unsigned};
use dbkeep_model::accounts::{
    Accounts, ApiToken, Databases, Grant, LoginFailures, NewToken, OIDC_SOURCE, OidcLogin, Role,
    Session, SessionInfo, TokenGrant, TwoFactor, User, UserInfo,
};
use dbkeep_model::error::Result;

impl Accounts for PostgresCatalog {
    fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        grant: &Grant,
        now: DateTime<Utc>,
    ) -> Result<User> {
        let id = self.row(
            "INSERT INTO users (name, password_hash, created_at, role, databases)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &name,
                &password_hash,
                &ms(now),
                &grant.role.as_str(),
                &grant.databases.stored(),
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        Ok(User::new(
            id.ok_or_else(|| self.err("the new user's id was not returned"))?,
            name,
            grant,
            false,
        ))
    }

    fn set_grant(&self, name: &str, grant: &Grant) -> Result<bool> {
        self.change_user(
            "UPDATE users SET role = $2, databases = $3 WHERE name = $1",
            &[&name, &grant.role.as_str(), &grant.databases.stored()],
        )
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        // Whoever knew the old password is logged out everywhere.
        self.change_user(
            "UPDATE users SET password_hash = $2 WHERE name = $1",
            &[&name, &password_hash],
        )
    }

    fn delete_user(&self, name: &str) -> Result<bool> {
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
                &[&name],
            )?;
            Ok(tx.execute("DELETE FROM users WHERE name = $1", &[&name])? == 1)
        })
    }

    fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>> {
        if !storable(name) {
            return Ok(None);
        }
        self.row(
            "SELECT id, name, role, databases, totp_enabled, source, password_hash FROM users WHERE name = $1",
            &[&name],
            |r| Ok((user(r, 0)?, r.try_get(6)?)),
        )
    }

    fn users(&self) -> Result<Vec<UserInfo>> {
        self.rows(
            "SELECT name, role, databases, created_at, source FROM users ORDER BY name",
            &[],
            |r| {
                Ok(UserInfo {
                    name: r.try_get(0)?,
                    grant: grant(r, 1)?,
                    created_at: r.try_get(3)?,
                    source: r.try_get(4)?,
                })
            },
        )
    }

    fn user_count(&self) -> Result<u64> {
        let n = self.row("SELECT count(*) FROM users", &[], |r| {
            Ok(unsigned(r.try_get(0)?))
        })?;
        Ok(n.unwrap_or(0))
    }

    fn add_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&token_sha256, &user_id, &csrf, &ms(now), &ms(expires)],
        )?;
        Ok(())
    }

    fn session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        self.row(
            "SELECT u.id, u.name, u.role, u.databases, u.totp_enabled, u.source, s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_sha256 = $1 AND s.expires_at > $2",
            &[&token_sha256, &ms(now)],
            |r| {
                Ok(Session {
                    user: user(r, 0)?,
                    csrf_token: r.try_get(6)?,
                    expires_at: r.try_get(7)?,
                })
            },
        )
    }

    fn delete_session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()> {
        self.execute(
            "DELETE FROM sessions WHERE token_sha256 = $1 OR expires_at <= $2",
            &[&token_sha256, &ms(now)],
        )?;
        Ok(())
    }

    fn add_token(&self, token: &NewToken<'_>, now: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO api_tokens (name, token_sha256, created_at, role, databases, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &token.name,
                &token.token_sha256,
                &ms(now),
                &token.grant.role.as_str(),
                &token.grant.databases.stored(),
                &token.expires_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn revoke_token(&self, name: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM api_tokens WHERE name = $1", &[&name])? == 1)
    }

    fn use_token(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<TokenGrant>> {
        if !storable(token_sha256) {
            return Ok(None);
        }
        // Its use is noted at most once a minute: many requests at once with one token would
        // otherwise queue on its row.
        self.row(
            "WITH token AS (SELECT id, name, role, databases FROM api_tokens WHERE token_sha256 = $1
               AND (expires_at IS NULL OR expires_at > $2)),
             noted AS (UPDATE api_tokens SET last_used_at = $2 WHERE id IN (SELECT id FROM token)
               AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute') RETURNING 1)
             SELECT id, name, role, databases FROM token",
            &[&token_sha256, &ms(now)],
            |r| {
                Ok(TokenGrant {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    grant: grant(r, 2)?,
                })
            },
        )
    }

    fn tokens(&self) -> Result<Vec<ApiToken>> {
        self.rows(
            "SELECT name, created_at, last_used_at, role, databases, expires_at
             FROM api_tokens ORDER BY name",
            &[],
            |r| {
                Ok(ApiToken {
                    name: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    last_used_at: r.try_get(2)?,
                    grant: grant(r, 3)?,
                    expires_at: r.try_get(5)?,
                })
            },
        )
    }

    fn sessions(&self, now: DateTime<Utc>) -> Result<Vec<SessionInfo>> {
        self.rows(
            "SELECT u.name, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.expires_at > $1 ORDER BY u.name, s.created_at",
            &[&ms(now)],
            |r| {
                Ok(SessionInfo {
                    user: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    expires_at: r.try_get(2)?,
                })
            },
        )
    }

    fn end_sessions(&self, name: &str) -> Result<u64> {
        self.execute(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
            &[&name],
        )
    }

    fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactor>> {
        self.row(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users
             WHERE id = $1 AND totp_secret IS NOT NULL",
            &[&user_id],
            |r| {
                Ok(TwoFactor {
                    secret: r.try_get(0)?,
                    enabled: r.try_get(1)?,
                    last_step: r.try_get(2)?,
                })
            },
        )
    }

    fn set_two_factor(&self, user_id: i64, secret: Option<&str>, enabled: bool) -> Result<()> {
        let enabled = enabled && secret.is_some();
        self.transaction(|tx| {
            tx.execute(
                "UPDATE users SET totp_secret = $2, totp_enabled = $3 WHERE id = $1",
                &[&user_id, &secret, &enabled],
            )?;
            if secret.is_none() {
                tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])?;
            }
            Ok(())
        })
    }

    fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        Ok(self.execute(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            &[&user_id, &step],
        )? == 1)
    }

    fn set_recovery_codes(&self, user_id: i64, digests: &[String]) -> Result<()> {
        self.transaction(|tx| {
            tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])?;
            tx.execute(
                "INSERT INTO recovery_codes (user_id, code_sha256) SELECT $1, d FROM unnest($2::text[]) AS d",
                &[&user_id, &digests],
            )?;
            Ok(())
        })
    }

    fn use_recovery_code(&self, user_id: i64, digest: &str, now: DateTime<Utc>) -> Result<bool> {
        if !storable(digest) {
            return Ok(false);
        }
        Ok(self.execute(
            "UPDATE recovery_codes SET used_at = $3
             WHERE user_id = $1 AND code_sha256 = $2 AND used_at IS NULL",
            &[&user_id, &digest, &ms(now)],
        )? == 1)
    }

    fn recovery_codes_left(&self, user_id: i64) -> Result<u64> {
        let n = self.row(
            "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            &[&user_id],
            |r| Ok(unsigned(r.try_get(0)?)),
        )?;
        Ok(n.unwrap_or(0))
    }

    fn add_pending_login(
        &self,
        token_sha256: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO pending_logins (token_sha256, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&token_sha256, &user_id, &ms(now), &ms(expires)],
        )?;
        Ok(())
    }

    fn pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        if !storable(token_sha256) {
            return Ok(None);
        }
        self.row(
            "SELECT u.id, u.name, u.role, u.databases, u.totp_enabled, u.source
             FROM pending_logins p JOIN users u ON u.id = p.user_id
             WHERE p.token_sha256 = $1 AND p.expires_at > $2",
            &[&token_sha256, &ms(now)],
            |r| user(r, 0),
        )
    }

    fn add_oidc_login(
        &self,
        state_sha256: &str,
        login: &OidcLogin,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO oidc_logins (state_sha256, verifier, nonce, next, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &state_sha256,
                &login.verifier,
                &login.nonce,
                &storable_key(&login.next),
                &ms(now),
                &ms(expires),
            ],
        )?;
        Ok(())
    }

    fn take_oidc_login(&self, state_sha256: &str, now: DateTime<Utc>) -> Result<Option<OidcLogin>> {
        if !storable(state_sha256) {
            return Ok(None);
        }
        self.execute(
            "DELETE FROM oidc_logins WHERE expires_at <= $1",
            &[&ms(now)],
        )?;
        self.row(
            "DELETE FROM oidc_logins WHERE state_sha256 = $1 RETURNING verifier, nonce, next",
            &[&state_sha256],
            |r| {
                Ok(OidcLogin {
                    verifier: r.try_get(0)?,
                    nonce: r.try_get(1)?,
                    next: r.try_get(2)?,
                })
            },
        )
    }

    fn add_sign_on_user(&self, name: &str, grant: &Grant, now: DateTime<Utc>) -> Result<User> {
        let id = self.row(
            "INSERT INTO users (name, password_hash, created_at, role, databases, source)
             VALUES ($1, '!', $2, $3, $4, $5) RETURNING id",
            &[
                &name,
                &ms(now),
                &grant.role.as_str(),
                &grant.databases.stored(),
                &OIDC_SOURCE,
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        Ok(User::new(
            id.ok_or_else(|| self.err("the new user's id was not returned"))?,
            name,
            grant,
            true,
        ))
    }

    fn end_pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()> {
        self.execute(
            "DELETE FROM pending_logins WHERE token_sha256 = $1 OR expires_at <= $2",
            &[&storable_key(token_sha256), &ms(now)],
        )?;
        Ok(())
    }
}

impl PostgresCatalog {
    /// Runs `update` on the user named by its first parameter and ends their sessions, in one
    /// transaction; false when there is no such user.
    fn change_user(&self, update: &str, params: crate::postgres_rows::Params<'_>) -> Result<bool> {
        self.transaction(|tx| {
            let n = tx.execute(update, params)?;
            tx.execute(
                "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)",
                &params[..1],
            )?;
            Ok(n == 1)
        })
    }
}

/// A user from the columns `id, name, role, databases, totp_enabled, source` starting at
/// `first`.
fn user(r: &postgres::Row, first: usize) -> RowResult<User> {
    Ok(User {
        id: r.try_get(first)?,
        name: r.try_get(first + 1)?,
        grant: grant(r, first + 2)?,
        two_factor: r.try_get(first + 4)?,
        single_sign_on: r.try_get::<_, String>(first + 5)? == OIDC_SOURCE,
    })
}

/// A grant from the columns `role, databases` starting at `first`. A role the catalog does
/// not know (written by a newer dbkeep) is read as the least one.
fn grant(r: &postgres::Row, first: usize) -> RowResult<Grant> {
    let role: String = r.try_get(first)?;
    let databases: Option<String> = r.try_get(first + 1)?;
    Ok(Grant {
        role: role.parse().unwrap_or(Role::Viewer),
        databases: Databases::from_stored(databases.as_deref()),
    })
}

impl LoginFailures for PostgresCatalog {
    fn record_login_failure(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
        keep: std::time::Duration,
    ) -> Result<()> {
        let now = ms(now);
        let oldest = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|keep| now.checked_sub_signed(keep))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let keys: Vec<String> = keys.iter().map(|k| storable_key(k)).collect();
        self.transaction(|tx| {
            tx.execute("DELETE FROM login_failures WHERE at < $1", &[&oldest])?;
            tx.execute(
                "INSERT INTO login_failures (key, at) SELECT key, $2 FROM unnest($1::text[]) AS k (key)",
                &[&keys, &now],
            )?;
            Ok(())
        })
    }

    fn login_failures_since(&self, keys: &[String], since: DateTime<Utc>) -> Result<u64> {
        let keys: Vec<String> = keys.iter().map(|k| storable_key(k)).collect();
        let most = self.row(
            "SELECT coalesce(max(n), 0) FROM (
                 SELECT count(*) AS n FROM login_failures WHERE key = ANY($1) AND at >= $2 GROUP BY key
             ) AS per_key",
            &[&keys, &ms(since)],
            |r| Ok(unsigned(r.try_get(0)?)),
        )?;
        Ok(most.unwrap_or(0))
    }
}
