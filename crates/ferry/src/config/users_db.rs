//! `users_db`: the path of an SQLite file, or the URL of a PostgreSQL database shared by several nodes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the users (and bans, keys, cluster state) are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsersDb {
    /// An SQLite database file (one node).
    File(PathBuf),
    /// A PostgreSQL database, `postgres://…` (several nodes may share it).
    Postgres(String),
}

impl UsersDb {
    /// The SQLite file, if that is what it is.
    pub fn file(&self) -> Option<&Path> {
        match self {
            UsersDb::File(path) => Some(path),
            UsersDb::Postgres(_) => None,
        }
    }
}

/// For logs and messages: the path, or the URL without its password.
impl fmt::Display for UsersDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersDb::File(path) => write!(f, "{}", path.display()),
            UsersDb::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

/// Checks a `scheme://…` value of `users_db`: PostgreSQL URLs are accepted (and must parse), every other
/// scheme is refused with what to write instead. `None`: not a URL (a path).
pub fn parse_url(s: &str) -> Option<Result<String, String>> {
    let (scheme, _) = s.split_once("://")?;
    Some(match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => match sqlx::postgres::PgConnectOptions::from_str(s) {
            Ok(_) => Ok(s.to_owned()),
            Err(e) => Err(format!(
                "{} is not a usable PostgreSQL URL: {e}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                redacted(s)
            )),
        },
        _ => Err(format!(
            "`{scheme}://` is not a supported database: give the path of an SQLite file, or a \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE URL"
        )),
    })
}

/// `url` with the password (in the user part or as a `password=` parameter) replaced by `***`.
pub fn redacted(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..].find(['/', '?']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, params) = out.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_accepted_and_other_schemes_refused() {
        assert_eq!(parse_url("ferry-data/users.db"), None);
        assert_eq!(parse_url("/srv/users.db"), None);
        let url = "postgres://ferry:secret@db.internal:5432/ferry?sslmode=verify-full";
        assert_eq!(parse_url(url), Some(Ok(url.to_owned())));
        assert!(matches!(parse_url("postgresql://localhost/ferry"), Some(Ok(_))));
        let err = parse_url("mysql://root@localhost/ferry")
            .expect("a URL")
            .expect_err("refused");
        assert!(err.contains("`mysql://` is not a supported database"), "{err}");
        let err = parse_url("postgres://h/db?sslmode=sometimes")
            .expect("a URL")
            .expect_err("refused");
        assert!(err.contains("not a usable PostgreSQL URL"), "{err}");
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("postgres://ferry:s3cret@db:5432/ferry"),
            "postgres://ferry:***@db:5432/ferry"
        );
        assert_eq!(
            redacted("postgres://db/ferry?user=ferry&password=s3cret&sslmode=require"),
            "postgres://db/ferry?user=ferry&password=***&sslmode=require"
        );
        assert_eq!(redacted("postgres://ferry@db/ferry"), "postgres://ferry@db/ferry");
        let shown = UsersDb::Postgres("postgres://a:b@c/d".into()).to_string();
        assert!(!shown.contains(":b@"), "{shown}");
    }
}
