//! Tenant slugs and the schema names derived from them.
//!
//! A schema name is never built from raw input: a [`Slug`] is validated first,
//! then mapped to `t_<slug with - as _>` and quoted wherever it reaches SQL.

use std::fmt;

/// Words a slug may not be: they would shadow infrastructure hostnames.
const RESERVED: &[&str] = &[
    "www", "admin", "api", "app", "static", "assets", "public", "root", "mail",
];

/// A validated tenant slug: `^[a-z][a-z0-9-]{1,30}[a-z0-9]$`, not reserved,
/// not starting with `pg`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlugError {
    #[error("a slug is 3 to 32 characters long")]
    Length,
    #[error("a slug starts with a lower-case letter")]
    Start,
    #[error("a slug ends with a lower-case letter or digit")]
    End,
    #[error("a slug has only lower-case letters, digits and hyphens")]
    Characters,
    #[error("\"{0}\" is reserved; choose another slug")]
    Reserved(String),
    #[error("slugs may not start with \"pg\"")]
    PgPrefix,
}

impl Slug {
    pub fn parse(input: &str) -> Result<Slug, SlugError> {
        let s = input;
        if !(3..=32).contains(&s.len()) {
            return Err(SlugError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(SlugError::Characters);
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return Err(SlugError::Start);
        }
        if s.ends_with('-') {
            return Err(SlugError::End);
        }
        if RESERVED.contains(&s) {
            return Err(SlugError::Reserved(s.to_owned()));
        }
        if s.starts_with("pg") {
            return Err(SlugError::PgPrefix);
        }
        Ok(Slug(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn schema_name(&self) -> SchemaName {
        SchemaName(format!("t_{}", self.0.replace('-', "_")))
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The PostgreSQL schema of one tenant. Only constructible from a [`Slug`] or
/// by re-validating a stored name, so it is always a safe identifier.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

impl SchemaName {
    /// Re-validates a name read back from the catalogue.
    pub fn from_stored(name: &str) -> Option<SchemaName> {
        let slug = name.strip_prefix("t_")?.replace('_', "-");
        let parsed = Slug::parse(&slug).ok()?;
        (parsed.schema_name().0 == name).then(|| SchemaName(name.to_owned()))
    }

    /// The schema of spare number `id` (`tenancy::spares`): not a tenant's
    /// name (those start with `t_`), so no host can ever reach it.
    pub(super) fn spare(id: i64) -> SchemaName {
        SchemaName(format!("tenantry_spare_{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier. Validation already excludes quotes;
    /// doubling them anyway keeps this correct on its own.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0.replace('"', "\"\""))
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_slugs() {
        for s in ["acme", "globex-corp", "a1b", "x-2-y", &"a".repeat(32)] {
            assert!(Slug::parse(s).is_ok(), "{s}");
        }
        assert_eq!(
            Slug::parse("globex-corp").unwrap().schema_name().as_str(),
            "t_globex_corp"
        );
    }

    #[test]
    fn refuses_bad_slugs() {
        let cases = [
            ("Bad Slug!", SlugError::Characters),
            ("public", SlugError::Reserved("public".into())),
            ("pg_x", SlugError::Characters),
            ("pgx", SlugError::PgPrefix),
            ("a", SlugError::Length),
            ("ab-", SlugError::End),
            ("1ab", SlugError::Start),
            ("-ab", SlugError::Start),
        ];
        for (input, err) in cases {
            assert_eq!(Slug::parse(input), Err(err), "{input}");
        }
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::Length));
        assert!(Slug::parse("x'; drop schema public cascade; --").is_err());
        assert!(Slug::parse("acmé").is_err());
    }

    #[test]
    fn stored_names_are_revalidated() {
        assert!(SchemaName::from_stored("t_acme").is_some());
        assert!(SchemaName::from_stored("t_globex_corp").is_some());
        assert!(SchemaName::from_stored("public").is_none());
        assert!(SchemaName::from_stored("t_a\"b").is_none());
        assert!(SchemaName::from_stored("t_ab_").is_none());
        assert!(SchemaName::from_stored(SchemaName::spare(7).as_str()).is_none());
    }
}
