//! What databases a server holds, for discovery: PostgreSQL's `pg_database` through `psql`,
//! MySQL's schemata through its client. Each listing waits at most [`CONNECT_TIMEOUT`] for
//! the server, so that one unreachable server does not hold up the others.

/// How long a listing waits for a server to accept the connection.
pub const CONNECT_TIMEOUT_SECS: u32 = 10;

/// One database a server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name on the server.
    pub name: String,
    /// Why the configured user cannot read it (the server's words), if it cannot.
    pub unreadable: Option<String>,
}

/// What a server said when asked for its databases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Its databases, by name.
    pub databases: Vec<Listed>,
    /// What the user lacks for a complete backup of every database, if it lacks something
    /// (e.g. PostgreSQL's `pg_read_all_data`).
    pub warning: Option<String>,
}

/// `url` with a `connect_timeout` of [`CONNECT_TIMEOUT_SECS`] unless it names one: a server
/// that does not answer is said so, soon.
pub(crate) fn with_connect_timeout(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    if !url.query_pairs().any(|(k, _)| k == "connect_timeout") {
        url.query_pairs_mut()
            .append_pair("connect_timeout", &CONNECT_TIMEOUT_SECS.to_string());
    }
    url
}
