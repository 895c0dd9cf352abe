//! Host names: normalising the `Host` header and validating custom domains.

/// Lower-cases a `Host` value and strips the port and one trailing dot.
/// Returns `None` for values no site could ever be known by.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 260 {
        return None;
    }
    let is_port = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop the port.
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(is_port) {
            return None;
        }
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            // A name has no colon of its own; only the port follows one.
            Some((host, port)) if is_port(port) && !host.contains(':') => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || !host.is_ascii() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("enter a domain such as tasks.example.com")]
    Empty,
    #[error("a domain is at most 253 characters")]
    TooLong,
    #[error("a domain has at least two labels, such as example.com")]
    SingleLabel,
    #[error(
        "each part of a domain is 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen"
    )]
    BadLabel,
    #[error("this domain is reserved for the control panel")]
    Reserved,
}

/// Validates and lower-cases a custom domain for a tenant. The root domain and
/// every name under it are refused: those are the platform's.
pub fn validate_domain(input: &str, root: &str) -> Result<String, DomainError> {
    let domain = input.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err(DomainError::Empty);
    }
    if domain.len() > 253 {
        return Err(DomainError::TooLong);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return Err(DomainError::BadLabel);
    }
    if labels.len() < 2 {
        return Err(DomainError::SingleLabel);
    }
    if domain == root {
        return Err(DomainError::Reserved);
    }
    // Everything under the root domain belongs to the platform: tenants'
    // default domains and the reserved infrastructure names.
    if domain.ends_with(&format!(".{root}")) {
        return Err(DomainError::Reserved);
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(
            normalize_host("ACME.localhost:8080").as_deref(),
            Some("acme.localhost")
        );
        assert_eq!(
            normalize_host("acme.localhost.").as_deref(),
            Some("acme.localhost")
        );
        assert_eq!(normalize_host("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("a:b"), None);
        assert_eq!(normalize_host("::"), None);
        assert_eq!(normalize_host("a:"), None);
        assert_eq!(normalize_host("[::1]x"), None);
        assert_eq!(normalize_host("bücher.de"), None);
        assert_eq!(normalize_host(&"a".repeat(8192)), None);
    }

    #[test]
    fn domains_are_validated() {
        let root = "localhost";
        assert_eq!(
            validate_domain("Tasks.Example.COM.", root).as_deref(),
            Ok("tasks.example.com")
        );
        assert_eq!(
            validate_domain("localhost", root),
            Err(DomainError::SingleLabel)
        );
        assert_eq!(
            validate_domain("www.localhost", root),
            Err(DomainError::Reserved)
        );
        assert_eq!(validate_domain("a..b", root), Err(DomainError::BadLabel));
        assert_eq!(validate_domain("-a.com", root), Err(DomainError::BadLabel));
        assert_eq!(validate_domain("a_b.com", root), Err(DomainError::BadLabel));
        assert_eq!(validate_domain("", root), Err(DomainError::Empty));
        assert_eq!(
            validate_domain("example.com", "example.com"),
            Err(DomainError::Reserved)
        );
    }
}
