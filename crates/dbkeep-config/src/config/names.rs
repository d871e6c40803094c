//! What a name in the configuration may be: of a database or destination, of an environment
//! variable.

/// Whether `name` can be an environment variable's name: letters, digits and `_`.
pub(crate) fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is a usable name (of a database, of a destination): 1 to 64 letters, digits,
/// `-` or `_`, so that it is safe as a folder and a key.
pub(crate) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
