//! Accounts as the catalog keeps them: users (with their password hashes and roles), login
//! sessions, API tokens and failed logins. Secrets are stored only as digests.

use chrono::{DateTime, Utc};

pub use crate::grant::{Databases, Grant, Role};

use crate::error::Result;

/// A user who may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Identifier.
    pub id: i64,
    /// Login name.
    pub name: String,
    /// What they may do, and to which databases.
    pub grant: Grant,
    /// Whether they log in with a second factor (TOTP) besides the password.
    pub two_factor: bool,
    /// Whether they come from single sign-on (no password; their provider checks them).
    pub single_sign_on: bool,
}

impl User {
    /// A user just made: no second factor yet; from single sign-on or with a password.
    pub fn new(id: i64, name: &str, grant: &Grant, single_sign_on: bool) -> Self {
        User {
            id,
            name: name.to_string(),
            grant: grant.clone(),
            two_factor: false,
            single_sign_on,
        }
    }
}

/// A user's TOTP secret as kept, and the last time step a code was accepted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactor {
    /// The shared secret, base32.
    pub secret: String,
    /// Whether it is confirmed (a code from it was entered); unconfirmed while enrolling.
    pub enabled: bool,
    /// The newest 30-second step a code was accepted for: no code is accepted twice.
    pub last_step: i64,
}

/// A login session as an admin sees it (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Whose.
    pub user: String,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// A login gone to the OpenID Connect provider, as kept until it comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLogin {
    /// The PKCE verifier of the code challenge sent.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Where to go after logging in.
    pub next: String,
}

/// Where users made by single sign-on come from (`users.source`).
pub const OIDC_SOURCE: &str = "oidc";

/// A user as the users list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Where they come from: `local` (a password) or `oidc` (single sign-on).
    pub source: String,
    /// What they may do, and to which databases.
    pub grant: Grant,
    /// When they were added.
    pub created_at: DateTime<Utc>,
}

/// A valid API token, as a request presenting it is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// Its catalog identifier (what the audit log names besides the name).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// What it may do, and to which databases.
    pub grant: Grant,
}

/// A token to be recorded: its name, digest, scope and expiry.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Its name, unique.
    pub name: &'a str,
    /// The SHA-256 digest of the secret (never the secret).
    pub token_sha256: &'a str,
    /// What it may do, and to which databases.
    pub grant: &'a Grant,
    /// When it stops working; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A logged-in session, found by the digest of its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who is logged in.
    pub user: User,
    /// The token every form POST of this session must carry.
    pub csrf_token: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// An API token's record (never the token itself).
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Its name, chosen at creation.
    pub name: String,
    /// What it may do, and to which databases.
    pub grant: Grant,
    /// When it stops working; `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Where users, sessions and API tokens are kept (the catalog, so that several instances
/// sharing it share logins too).
pub trait Accounts: Send + Sync {
    /// Creates a user with an Argon2id `password_hash` and what they may do.
    ///
    /// # Errors
    /// When the name is taken or the store cannot be written.
    fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        grant: &Grant,
        now: DateTime<Utc>,
    ) -> Result<User>;
    /// Changes what a user may do and ends all their sessions (a session must never carry
    /// more than its user now may); false when there is no such user.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn set_grant(&self, name: &str, grant: &Grant) -> Result<bool>;
    /// Replaces a user's password hash and ends all their sessions; false when there is no
    /// such user.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    /// Deletes a user and their sessions; false when there is no such user.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn delete_user(&self, name: &str) -> Result<bool>;
    /// A user and their password hash, by name.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn user_by_name(&self, name: &str) -> Result<Option<(User, String)>>;
    /// Every user, by name.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn users(&self) -> Result<Vec<UserInfo>>;
    /// How many users exist.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn user_count(&self) -> Result<u64>;
    /// Records a session whose cookie token has digest `token_sha256`.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn add_session(
        &self,
        token_sha256: &str,
        user_id: i64,
        csrf: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()>;
    /// The unexpired session with cookie digest `token_sha256`.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<Session>>;
    /// Ends a session (logout); also removes expired sessions.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn delete_session(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()>;
    /// Records an API token by its digest, with its scope and expiry.
    ///
    /// # Errors
    /// When the name is taken or the store cannot be written.
    fn add_token(&self, token: &NewToken<'_>, now: DateTime<Utc>) -> Result<()>;
    /// Deletes an API token; false when there is no such token.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn revoke_token(&self, name: &str) -> Result<bool>;
    /// The unexpired API token with this digest, noting its use.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    fn use_token(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<TokenGrant>>;
    /// Every API token's record.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn tokens(&self) -> Result<Vec<ApiToken>>;

    /// Every unexpired session, by user and then by start.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn sessions(&self, now: DateTime<Utc>) -> Result<Vec<SessionInfo>>;
    /// Ends every session of the user named `name`; how many there were.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn end_sessions(&self, name: &str) -> Result<u64>;

    /// A user's TOTP secret, when they have one (enrolled or enrolling).
    ///
    /// # Errors
    /// When the store cannot be read.
    fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactor>>;
    /// Sets a user's TOTP secret (`enabled` once confirmed), or with `None` removes it and
    /// their recovery codes.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn set_two_factor(&self, user_id: i64, secret: Option<&str>, enabled: bool) -> Result<()>;
    /// Accepts a code for time step `step` if it is newer than the last accepted one, in one
    /// statement (of two logins with the same code, one wins); false when it is not.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn accept_totp_step(&self, user_id: i64, step: i64) -> Result<bool>;
    /// Replaces a user's recovery codes with these digests.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn set_recovery_codes(&self, user_id: i64, digests: &[String]) -> Result<()>;
    /// Uses the unused recovery code with this digest; false when there is none.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn use_recovery_code(&self, user_id: i64, digest: &str, now: DateTime<Utc>) -> Result<bool>;
    /// How many unused recovery codes a user has.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn recovery_codes_left(&self, user_id: i64) -> Result<u64>;

    /// Records a login whose password matched and that waits for its second factor.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn add_pending_login(
        &self,
        token_sha256: &str,
        user_id: i64,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()>;
    /// The user of the unexpired pending login with this digest.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<Option<User>>;
    /// Records a login gone to the OpenID Connect provider, under its state's digest.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn add_oidc_login(
        &self,
        state_sha256: &str,
        login: &OidcLogin,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<()>;
    /// Takes (removes and returns) the unexpired login gone to the provider with this state's
    /// digest: a state is good once. Also removes expired ones.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn take_oidc_login(&self, state_sha256: &str, now: DateTime<Utc>) -> Result<Option<OidcLogin>>;
    /// Creates a user made by single sign-on (source `oidc`), who has no password.
    ///
    /// # Errors
    /// When the name is taken or the store cannot be written.
    fn add_sign_on_user(&self, name: &str, grant: &Grant, now: DateTime<Utc>) -> Result<User>;
    /// The user named `name` made by single sign-on, created (without a password) or given
    /// `grant` (ending their sessions when it changed); `None` when a local user has the name.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    fn sign_on_user(&self, name: &str, grant: &Grant, now: DateTime<Utc>) -> Result<Option<User>> {
        match self.user_by_name(name)? {
            Some((user, _)) if !user.single_sign_on => Ok(None),
            Some((mut user, _)) => {
                if user.grant != *grant {
                    self.set_grant(name, grant)?;
                    user.grant = grant.clone();
                }
                Ok(Some(user))
            }
            None => self.add_sign_on_user(name, grant, now).map(Some),
        }
    }
    /// Ends a pending login (done, or abandoned); also removes expired ones.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn end_pending_login(&self, token_sha256: &str, now: DateTime<Utc>) -> Result<()>;
}

/// Failed logins kept beside the accounts, so that instances sharing them throttle together.
pub trait LoginFailures: Send + Sync {
    /// Records a failed login for each of `keys` at `now`, and forgets those older than
    /// `keep`.
    ///
    /// # Errors
    /// When the store cannot be written.
    fn record_login_failure(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
        keep: std::time::Duration,
    ) -> Result<()>;

    /// The most failed logins any of `keys` has since `since`.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn login_failures_since(&self, keys: &[String], since: DateTime<Utc>) -> Result<u64>;
}

/// The longest user name a login form may send; longer ones are refused unread.
pub const MAX_USER_NAME_BYTES: usize = 256;
/// The longest password a login form may send, and that a user may be given.
pub const MAX_PASSWORD_BYTES: usize = 1024;
