//! What a user or an API token may do: a role, and optionally only some databases.

use std::fmt;
use std::str::FromStr;

/// What someone may do. Each role may do everything the one before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees status, history, schedules and instances; never a backup's contents.
    Viewer,
    /// Also backs up now, verifies and downloads.
    Operator,
    /// Also restores, imports, pins, prunes, and manages users, tokens and settings.
    Admin,
}

impl Role {
    /// Every role, from least to most.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name in the catalog, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role: use viewer, operator or admin"))
    }
}

/// Which databases someone may see and act on: all of them, or those whose dbkeep name
/// matches one of some names or glob patterns (`shop`, `tenants-*`: a server's discovered
/// databases are named `<server>-<database>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Databases(Vec<glob::Pattern>);

/// The longest list of databases a grant may carry, in bytes as stored.
pub const MAX_DATABASES_BYTES: usize = 4096;

impl Databases {
    /// Every database, including those configured or discovered later.
    pub fn all() -> Self {
        Self(Vec::new())
    }

    /// Whether this is every database.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a comma-separated list of names and patterns (`app,shop,tenants-*`); an empty
    /// list or `*` is every database.
    ///
    /// # Errors
    /// What is wrong with the list, naming the bad entry.
    pub fn parse(list: &str) -> Result<Self, String> {
        if list.len() > MAX_DATABASES_BYTES {
            return Err(format!(
                "the list of databases is longer than {MAX_DATABASES_BYTES} bytes"
            ));
        }
        let mut patterns: Vec<glob::Pattern> = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(Self::all());
            }
            if !entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.*?[]!".contains(c))
            {
                return Err(format!(
                    "`{entry}` is not a database name or pattern: use letters, digits, -, _, . and the wildcards * ? [ ]"
                ));
            }
            let pattern = glob::Pattern::new(entry)
                .map_err(|e| format!("`{entry}` is not a valid pattern: {e}"))?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        Ok(Self(patterns))
    }

    /// Whether the database named `name` is among these.
    pub fn allows(&self, name: &str) -> bool {
        self.is_all() || self.0.iter().any(|p| p.matches(name))
    }

    /// The names and patterns, in the order given (empty for every database).
    pub fn entries(&self) -> Vec<&str> {
        self.0.iter().map(glob::Pattern::as_str).collect()
    }

    /// The form the catalog stores: `None` for every database, else the comma-separated list.
    pub fn stored(&self) -> Option<String> {
        (!self.is_all()).then(|| self.entries().join(","))
    }

    /// Reads the catalog's form back; an entry that no longer parses allows nothing rather
    /// than everything.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            None => Self::all(),
            // `/`, which no database name can match, and which stays unreadable if it is
            // stored again: nothing is allowed, now or after a change of role.
            Some(s) => Self::parse(s).unwrap_or_else(|_| {
                Self(vec![
                    glob::Pattern::new("/").unwrap_or_else(|_| glob::Pattern::default()),
                ])
            }),
        }
    }
}

impl fmt::Display for Databases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            f.write_str("all databases")
        } else {
            f.write_str(&self.entries().join(","))
        }
    }
}

/// What a user or an API token may do, and to which databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What they may do.
    pub role: Role,
    /// To which databases.
    pub databases: Databases,
}

impl Grant {
    /// `role` over every database.
    pub fn everywhere(role: Role) -> Self {
        Self {
            role,
            databases: Databases::all(),
        }
    }

    /// Whether this grant reaches `role`'s acts.
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }

    /// Whether this grant covers the database named `name`.
    pub fn sees(&self, name: &str) -> bool {
        self.databases.allows(name)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.role, self.databases)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_are_ordered_and_spelled_one_way() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let e = "root".parse::<Role>().unwrap_err();
        assert!(
            e.contains("`root`") && e.contains("viewer, operator or admin"),
            "{e}"
        );
        assert!(Grant::everywhere(Role::Admin).can(Role::Operator));
        assert!(!Grant::everywhere(Role::Viewer).can(Role::Operator));
    }

    #[test]
    fn database_lists_take_names_and_patterns() {
        let d = Databases::parse(" app, tenants-*,app ,").unwrap();
        assert_eq!(d.entries(), ["app", "tenants-*"]);
        assert!(d.allows("app") && d.allows("tenants-acme"));
        assert!(!d.allows("shop") && !d.allows("apps") && !d.allows("tenants"));
        assert_eq!(d.stored().as_deref(), Some("app,tenants-*"));
        assert_eq!(Databases::from_stored(Some("app,tenants-*")), d);
        assert!(Databases::parse("").unwrap().is_all());
        assert!(Databases::parse("app,*").unwrap().is_all());
        assert!(Databases::from_stored(None).allows("anything"));
        for bad in ["a b", "x;y", "[", "../etc"] {
            let e = Databases::parse(bad).unwrap_err();
            assert!(e.contains('`'), "{bad}: {e}");
        }
        assert!(Databases::parse(&"a,".repeat(3000)).is_err());
        // A stored list that no longer parses allows nothing, also once stored again.
        let unreadable = Databases::from_stored(Some("bad name"));
        assert!(!unreadable.allows("bad name"));
        let again = Databases::from_stored(unreadable.stored().as_deref());
        assert!(!again.is_all() && !again.allows("app"));
    }
}
