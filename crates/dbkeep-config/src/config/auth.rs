//! `[auth]`: how people log in to the web admin.

use serde::Deserialize;
use toml::Spanned;

use dbkeep_model::accounts::Role;
use dbkeep_model::error::ConfigError;

use super::Source;

/// Who must log in with a second factor (TOTP) besides the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TwoFactorRule {
    /// Nobody must; anyone may enrol.
    #[default]
    Off,
    /// Admins must.
    Admins,
    /// Everyone must.
    All,
}

impl TwoFactorRule {
    /// Whether a user of `role` must have a second factor.
    pub fn requires(self, role: Role) -> bool {
        match self {
            TwoFactorRule::Off => false,
            TwoFactorRule::Admins => role == Role::Admin,
            TwoFactorRule::All => true,
        }
    }
}

/// The web admin's login settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `require_2fa`: `false` (default), `true` or `"admins"`, or `"all"`.
    pub require_2fa: TwoFactorRule,
    /// Single sign-on with OpenID Connect (`[auth.oidc]`).
    pub oidc: Option<OidcSettings>,
    /// Whether users log in with a password (`local_login`, default true); when false, only
    /// `break_glass` still may.
    pub local_login: bool,
    /// The one local user who may log in with a password when `local_login = false`.
    pub break_glass: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            require_2fa: TwoFactorRule::Off,
            oidc: None,
            local_login: true,
            break_glass: None,
        }
    }
}

impl AuthSettings {
    /// Whether the user named `name` may log in with a password.
    pub fn password_allowed(&self, name: &str) -> bool {
        self.local_login || self.break_glass.as_deref() == Some(name)
    }
}

/// `[auth.oidc]`: an OpenID Connect provider (Keycloak, Authentik, Google, …).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL, exactly as its discovery document spells it (its
    /// discovery document is below it).
    pub issuer: String,
    /// This client's id at the provider.
    pub client_id: String,
    /// The environment variable holding the client secret (`None`: a public client).
    pub client_secret_env: Option<String>,
    /// The scopes asked for (`openid` is always among them).
    pub scopes: Vec<String>,
    /// The ID token claim whose value is the user's name in dbkeep.
    pub username_claim: String,
    /// The claim holding the user's groups.
    pub groups_claim: String,
    /// What each group may do, in file order; a user gets the highest role of their groups.
    pub groups: Vec<GroupRule>,
}

/// One `[[auth.oidc.groups]]`: a group of the provider's and what its members may do.
#[derive(Debug, Clone)]
pub struct GroupRule {
    /// The group's name as the groups claim carries it.
    pub name: String,
    /// What its members may do, and to which databases.
    pub grant: dbkeep_model::accounts::Grant,
}

impl OidcSettings {
    /// What a user in `groups` may do: the highest role among the matching rules (the first
    /// rule of that role); `None` when no rule matches (the login is refused).
    pub fn grant_for(&self, groups: &[String]) -> Option<dbkeep_model::accounts::Grant> {
        let mut best: Option<&GroupRule> = None;
        for rule in self.groups.iter().filter(|r| groups.contains(&r.name)) {
            if best.is_none_or(|b| rule.grant.role > b.grant.role) {
                best = Some(rule);
            }
        }
        best.map(|r| r.grant.clone())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    require_2fa: Option<Spanned<RawRule>>,
    local_login: Option<bool>,
    break_glass: Option<Spanned<String>>,
    oidc: Option<RawOidc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: Spanned<String>,
    client_id: Spanned<String>,
    client_secret_env: Option<Spanned<String>>,
    scopes: Option<Vec<String>>,
    username_claim: Option<String>,
    groups_claim: Option<String>,
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    role: Spanned<String>,
    databases: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRule {
    Flag(bool),
    Word(String),
}

impl RawAuth {
    pub(super) fn validate(self, source: &Source<'_>) -> Result<AuthSettings, ConfigError> {
        let require_2fa = match self.require_2fa {
            None => TwoFactorRule::Off,
            Some(rule) => {
                let span = rule.span();
                match rule.into_inner() {
                    RawRule::Flag(false) => TwoFactorRule::Off,
                    RawRule::Flag(true) => TwoFactorRule::Admins,
                    RawRule::Word(w) if w == "off" => TwoFactorRule::Off,
                    RawRule::Word(w) if w == "admins" => TwoFactorRule::Admins,
                    RawRule::Word(w) if w == "all" => TwoFactorRule::All,
                    RawRule::Word(w) => {
                        return Err(source.error(
                            span,
                            format!(
                                "`require_2fa = \"{w}\"` is not a rule: use false, true (admins), \"admins\" or \"all\""
                            ),
                        ));
                    }
                }
            }
        };
        let oidc = self.oidc.map(|o| o.validate(source)).transpose()?;
        let local_login = self.local_login.unwrap_or(true);
        let break_glass = self.break_glass.map(|b| b.into_inner());
        if !local_login && oidc.is_none() {
            return Err(source.error(
                0..0,
                "`[auth] local_login = false` needs `[auth.oidc]`: otherwise nobody but break_glass could log in",
            ));
        }
        Ok(AuthSettings {
            require_2fa,
            oidc,
            local_login,
            break_glass,
        })
    }
}

impl RawOidc {
    fn validate(self, source: &Source<'_>) -> Result<OidcSettings, ConfigError> {
        let issuer = match url::Url::parse(self.issuer.get_ref()) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
                self.issuer.get_ref().clone()
            }
            _ => {
                return Err(source.error(
                    self.issuer.span(),
                    format!(
                        "`issuer = \"{}\"` is not an http(s) URL such as \"https://id.example.com/realms/main\"",
                        self.issuer.get_ref()
                    ),
                ));
            }
        };
        if self.client_id.get_ref().is_empty() {
            return Err(source.error(self.client_id.span(), "`client_id` is empty"));
        }
        let mut scopes = self
            .scopes
            .unwrap_or_else(|| ["openid", "profile", "email"].map(String::from).to_vec());
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let mut groups = Vec::new();
        for g in self.groups {
            let role = g
                .role
                .get_ref()
                .parse()
                .map_err(|e| source.error(g.role.span(), e))?;
            let databases = match &g.databases {
                None => dbkeep_model::accounts::Databases::all(),
                Some(d) => dbkeep_model::accounts::Databases::parse(d.get_ref())
                    .map_err(|e| source.error(d.span(), e))?,
            };
            groups.push(GroupRule {
                name: g.name.into_inner(),
                grant: dbkeep_model::accounts::Grant { role, databases },
            });
        }
        if groups.is_empty() {
            return Err(source.error(
                self.client_id.span(),
                "`[auth.oidc]` has no `[[auth.oidc.groups]]`: say which group gets which role (name, role), or nobody could log in",
            ));
        }
        Ok(OidcSettings {
            issuer,
            client_id: self.client_id.into_inner(),
            client_secret_env: self.client_secret_env.map(|s| s.into_inner()),
            scopes,
            username_claim: self
                .username_claim
                .unwrap_or_else(|| "preferred_username".into()),
            groups_claim: self.groups_claim.unwrap_or_else(|| "groups".into()),
            groups,
        })
    }
}
