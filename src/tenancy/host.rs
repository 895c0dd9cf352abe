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
    // A second trailing dot (`acme..`) or a space or control character inside
    // is no name, and letting one through would leave a host that normalises
    // again to something else.
    if host.is_empty() || host.ends_with('.') || !host.bytes().all(|b| b.is_ascii_graphic()) {
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
    #[error("an IP address cannot be a custom domain; use a DNS name such as tasks.example.com")]
    IpAddress,
    #[error(
        "the last part of a domain cannot be a number: browsers read such a name as an IP address"
    )]
    NumericEnding,
    #[error(
        "this is not a valid internationalised domain name: check its spelling (and only xn-- labels may have hyphens as their third and fourth characters)"
    )]
    InvalidIdn,
}

/// Validates a custom domain for a tenant and returns the form it is stored
/// and looked up in: ASCII, lower-case, internationalised labels in their
/// punycode (`xn--`) form, so `bücher.example` and `xn--bcher-kva.example`
/// are one domain. IP addresses in any spelling a resolver accepts, and
/// names whose last label is a number, are refused. The root domain and
/// every name under it are refused: those are the platform's.
pub fn validate_domain(input: &str, root: &str) -> Result<String, DomainError> {
    let typed = input.trim().trim_end_matches('.');
    if typed.is_empty() {
        return Err(DomainError::Empty);
    }
    if is_ipv6_literal(typed) {
        return Err(DomainError::IpAddress);
    }
    // Bounds the work below; the ASCII form is checked again.
    if typed.chars().count() > 253 {
        return Err(DomainError::TooLong);
    }
    let domain = if typed.is_ascii() {
        typed.to_ascii_lowercase()
    } else {
        // UTS 46 mapping (case folding, full-width forms, ideographic full
        // stops) and punycode; the strict checks come once the shape is known.
        let mapped = idna::uts46::Uts46::new()
            .to_ascii(
                typed.as_bytes(),
                idna::uts46::AsciiDenyList::EMPTY,
                idna::uts46::Hyphens::Allow,
                idna::uts46::DnsLength::Ignore,
            )
            .map_err(|_| DomainError::InvalidIdn)?;
        let mapped = mapped.trim_end_matches('.').to_owned();
        if mapped.is_empty() {
            return Err(DomainError::Empty);
        }
        mapped
    };
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
    // Before the label count: `2130706433` is an address, not a lone label.
    if parse_ipv4(&labels).is_some() {
        return Err(DomainError::IpAddress);
    }
    if labels.last().is_some_and(|l| is_numeric_label(l)) {
        return Err(DomainError::NumericEnding);
    }
    if labels.len() < 2 {
        return Err(DomainError::SingleLabel);
    }
    // Strict UTS 46 (STD3 rules, hyphen checks, DNS lengths) on the ASCII
    // form: `xn--` labels must decode to valid names, typed or produced.
    let strict = idna::uts46::Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            idna::uts46::AsciiDenyList::STD3,
            idna::uts46::Hyphens::Check,
            idna::uts46::DnsLength::Verify,
        )
        .map_err(|_| DomainError::InvalidIdn)?;
    if strict != domain {
        return Err(DomainError::InvalidIdn);
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

/// `::1`, `[::1]`, `[2001:db8::1]`, `fe80::1%eth0`: an IPv6 address, bare or
/// bracketed as in a URL (a bracketed IPv4 address too).
fn is_ipv6_literal(host: &str) -> bool {
    let (inner, bracketed) = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => (inner, true),
        None => (host, false),
    };
    let address = inner
        .split_once('%')
        .map_or(inner, |(address, _zone)| address);
    address.parse::<std::net::Ipv6Addr>().is_ok()
        || (bracketed && address.parse::<std::net::Ipv4Addr>().is_ok())
}

/// The WHATWG URL "ends in a number" test for one label: all ASCII digits,
/// or `0x` followed by hex digits only (none at all counts, as `0x` is 0).
fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"))
    {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// The WHATWG URL IPv4 parser (as browsers and `inet_aton` read a host):
/// one to four parts, each decimal, `0x` hex or `0`-prefixed octal, the last
/// filling the bytes the others leave: `127.1`, `2130706433`, `0x7f.0.0.1`,
/// `0177.0.0.1` are all 127.0.0.1.
fn parse_ipv4(parts: &[&str]) -> Option<std::net::Ipv4Addr> {
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in parts {
        let (digits, radix) =
            if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
                (hex, 16)
            } else if part.len() > 1 && part.starts_with('0') {
                (&part[1..], 8)
            } else if part.is_empty() {
                return None;
            } else {
                (*part, 10)
            };
        let number = if digits.is_empty() {
            0
        } else if digits.bytes().all(|b| (b as char).is_digit(radix)) {
            // Too large for any part: over 2^32 either way.
            u64::from_str_radix(digits, radix).unwrap_or(u64::MAX)
        } else {
            return None;
        };
        numbers.push(number);
    }
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) || *last >= 256u64.pow(5 - numbers.len() as u32) {
        return None;
    }
    let mut address = *last;
    for (i, n) in init.iter().enumerate() {
        address += n << (8 * (3 - i));
    }
    Some(std::net::Ipv4Addr::from(u32::try_from(address).ok()?))
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
        assert_eq!(normalize_host(".."), None);
        assert_eq!(normalize_host("acme.localhost.."), None);
        assert_eq!(normalize_host("acme\t."), None);
        assert_eq!(normalize_host("ac me.localhost"), None);
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
        assert_eq!(
            validate_domain(&"a".repeat(254), root),
            Err(DomainError::TooLong)
        );
    }

    #[test]
    fn ip_addresses_in_every_spelling_are_refused() {
        let root = "localhost";
        for ip in [
            "127.0.0.1",
            "127.0.0.1.",
            "127.1",
            "127.0.1",
            "2130706433",
            "0x7f000001",
            "0X7F000001",
            "0x7f.0.0.1",
            "0x7f.1",
            "0177.0.0.1",
            "0177.1",
            "00.0x0.0",
            "0",
            "192.168.0.1",
            "255.255.255.255",
            "4294967295",
            "::1",
            "[::1]",
            "[2001:db8::1]",
            "2001:DB8::1",
            "::ffff:127.0.0.1",
            "fe80::1%eth0",
            "[127.0.0.1]",
            // Full-width digits and ideographic full stops map to ASCII.
            "１２７.０.０.１",
            "127。0。0。1",
        ] {
            assert_eq!(
                validate_domain(ip, root),
                Err(DomainError::IpAddress),
                "{ip}"
            );
        }
        for name in [
            "foo.123",
            "foo.123.",
            "foo.0x",
            "foo.0x1f",
            "foo.0X1F",
            "256.0.0.1",
            "1.2.3.4.5",
            "4294967296",
            "0x100000000",
            "99999999999999999999999",
            "a.b.c.09",
            "foo.１２３",
        ] {
            assert_eq!(
                validate_domain(name, root),
                Err(DomainError::NumericEnding),
                "{name}"
            );
        }
        // Numbers elsewhere, or a last label that is not only a number, are names.
        for name in [
            "1.2.3.com",
            "123.example.com",
            "foo.123a",
            "foo.0xg",
            "foo.x123",
            "0x7f.example",
        ] {
            assert_eq!(validate_domain(name, root).as_deref(), Ok(name), "{name}");
        }
        // Not an address, so the usual label message.
        assert_eq!(validate_domain("a:b", root), Err(DomainError::BadLabel));
        assert_eq!(validate_domain("[x]", root), Err(DomainError::BadLabel));
        assert_eq!(
            validate_domain("1.2.3.4:80", root),
            Err(DomainError::BadLabel)
        );
    }

    #[test]
    fn internationalised_names_are_stored_as_punycode() {
        let root = "localhost";
        for typed in [
            "bücher.example",
            "BÜCHER.example",
            "Bücher.Example.",
            "xn--bcher-kva.example",
            "XN--BCHER-KVA.EXAMPLE",
            "bücher。example",
            "ｂüｃｈｅｒ.example",
        ] {
            assert_eq!(
                validate_domain(typed, root).as_deref(),
                Ok("xn--bcher-kva.example"),
                "{typed}"
            );
        }
        assert_eq!(
            validate_domain("münchen.bücher.example", root).as_deref(),
            Ok("xn--mnchen-3ya.xn--bcher-kva.example")
        );
        assert_eq!(
            validate_domain("例え.テスト", root).as_deref(),
            Ok("xn--r8jz45g.xn--zckzah")
        );
        // Names the conversion refuses: bad punycode, a label that decodes to
        // a capital (not a valid label), hyphens in the third and fourth
        // places, a leading combining mark, a mixed-direction label.
        for bad in [
            "xn--a.example",
            "ab--cd.example",
            "xn--wca.example",
            "\u{0301}a.example",
            "aא.example",
        ] {
            assert_eq!(
                validate_domain(bad, root),
                Err(DomainError::InvalidIdn),
                "{bad}"
            );
        }
        // After the conversion, the usual rules: the root and names under it
        // are the platform's; the labels are letters, digits and hyphens.
        assert_eq!(
            validate_domain("ｗｗｗ.localhost", root),
            Err(DomainError::Reserved)
        );
        assert_eq!(
            validate_domain("ａｃｍｅ．ＬＯＣＡＬＨＯＳＴ", root),
            Err(DomainError::Reserved)
        );
        assert_eq!(
            validate_domain("bücher.example", "xn--bcher-kva.example"),
            Err(DomainError::Reserved)
        );
        assert_eq!(
            validate_domain("a.bücher.example", "xn--bcher-kva.example"),
            Err(DomainError::Reserved)
        );
        assert_eq!(
            validate_domain("bü_cher.com", root),
            Err(DomainError::BadLabel)
        );
        assert_eq!(validate_domain("bü..com", root), Err(DomainError::BadLabel));
        assert_eq!(
            validate_domain("bücher", root),
            Err(DomainError::SingleLabel)
        );
        assert_eq!(
            validate_domain(&format!("{}.example", "ü".repeat(70)), root),
            Err(DomainError::BadLabel)
        );
        assert_eq!(validate_domain("\u{00AD}", root), Err(DomainError::Empty));
    }
}
