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
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `require_2fa`: `false` (default), `true` or `"admins"`, or `"all"`.
    pub require_2fa: TwoFactorRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    require_2fa: Option<Spanned<RawRule>>,
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
        Ok(AuthSettings { require_2fa })
    }
}
