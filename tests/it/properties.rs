//! Property tests for the parsers and validators that stand between hostile
//! input and SQL, CSS or routing.

use proptest::prelude::*;
use tenantry::branding::{Color, clean_display_name};
use tenantry::password::clean_email;
use tenantry::tenancy::Slug;
use tenantry::tenancy::host::{DomainError, normalize_host, validate_domain};
use tenantry::tenancy::schema::SchemaName;

const ROOT: &str = "localhost";

fn slug_shape(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn host_normalisation_is_safe_and_idempotent(raw in ".{0,300}") {
        if let Some(host) = normalize_host(&raw) {
            prop_assert!(host.is_ascii());
            prop_assert_eq!(host.to_ascii_lowercase(), host.clone());
            prop_assert!(!host.ends_with('.'));
            prop_assert!(host.starts_with('[') || !host.contains(':'));
            prop_assert_eq!(normalize_host(&host), Some(host.clone()));
        }
    }

    #[test]
    fn host_with_port_and_case_normalises_like_the_plain_host(
        host in "[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,3}",
        port in 1u16..,
    ) {
        let noisy = format!("{}.:{port}", host.to_ascii_uppercase());
        prop_assert_eq!(normalize_host(&noisy), Some(host));
    }

    #[test]
    fn slugs_accepted_are_exactly_the_safe_ones(raw in "[a-z0-9_'; -]{0,40}|[a-z][a-z0-9-]{1,30}[a-z0-9]") {
        match Slug::parse(&raw) {
            Ok(slug) => {
                prop_assert!(slug_shape(&raw));
                prop_assert!(!raw.starts_with("pg"));
                let schema = slug.schema_name();
                prop_assert_eq!(SchemaName::from_stored(schema.as_str()), Some(schema.clone()));
                prop_assert!(schema.as_str().len() <= 63);
                prop_assert!(!schema.quoted()[1..schema.quoted().len() - 1].contains('"'));
            }
            Err(_) => {
                let reserved = ["www", "admin", "api", "app", "static", "assets", "public", "root", "mail"];
                prop_assert!(!slug_shape(&raw) || raw.starts_with("pg") || reserved.contains(&raw.as_str()));
            }
        }
    }

    #[test]
    fn domains_accepted_are_lower_case_hostnames_outside_the_root(
        raw in ".{0,80}|[A-Za-z0-9.-]{1,80}|[0-9a-fxX.:\\[\\]]{1,40}|[a-zà-ÿ０-９ａ-ｚ。.-]{1,40}"
    ) {
        if let Ok(domain) = validate_domain(&raw, ROOT) {
            prop_assert!(domain.len() <= 253);
            prop_assert_eq!(domain.to_ascii_lowercase(), domain.clone());
            prop_assert!(domain.split('.').count() >= 2);
            prop_assert!(domain.split('.').all(|l| !l.is_empty() && l.len() <= 63
                && !l.starts_with('-') && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
            prop_assert!(domain != ROOT && !domain.ends_with(".localhost"));
            prop_assert_eq!(validate_domain(&domain, ROOT), Ok(domain.clone()));
            // Never an address, nor a name a browser would read as one.
            prop_assert!(domain.parse::<std::net::IpAddr>().is_err());
            let last = domain.rsplit('.').next().unwrap();
            prop_assert!(!last.bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!last.strip_prefix("0x").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
            // Stored as strict UTS 46 gives it.
            prop_assert_eq!(idna::domain_to_ascii_strict(&domain).ok(), Some(domain.clone()));
        }
    }

    /// Every way a resolver may spell an IPv4 address (one to four parts,
    /// each decimal, hex or octal, the last filling the remaining bytes).
    #[test]
    fn ipv4_addresses_in_any_spelling_are_refused(
        address in any::<u32>(),
        parts in 1usize..=4,
        radixes in proptest::array::uniform4(0u8..3),
        upper in any::<bool>(),
        trailing_dot in any::<bool>(),
    ) {
        let mut numbers: Vec<u64> = (0..parts - 1)
            .map(|i| u64::from((address >> (24 - 8 * i)) & 0xff))
            .collect();
        numbers.push(u64::from(address) & ((1u64 << (8 * (5 - parts))) - 1));
        let spelled: Vec<String> = numbers
            .iter()
            .zip(radixes)
            .map(|(n, radix)| match (radix, upper) {
                (0, _) => format!("{n}"),
                (1, false) => format!("0x{n:x}"),
                (1, true) => format!("0X{n:X}"),
                _ => format!("0{n:o}"),
            })
            .collect();
        let mut host = spelled.join(".");
        if trailing_dot {
            host.push('.');
        }
        prop_assert_eq!(validate_domain(&host, ROOT), Err(DomainError::IpAddress), "{}", host);
    }

    #[test]
    fn ipv6_addresses_are_refused(segments in proptest::array::uniform8(any::<u16>()), bracketed in any::<bool>()) {
        let address = std::net::Ipv6Addr::from(segments).to_string();
        let host = if bracketed { format!("[{address}]") } else { address };
        prop_assert_eq!(validate_domain(&host, ROOT), Err(DomainError::IpAddress), "{}", host);
    }

    /// The WHATWG URL rule: a host whose last label is a number is read as
    /// an IPv4 address (or refused), so it can never be a DNS name.
    #[test]
    fn names_ending_in_a_number_are_refused(
        name in "[a-z][a-z0-9]{0,10}(\\.[a-z0-9]{1,10}){0,2}",
        last in "[0-9]{1,12}|0[xX][0-9a-fA-F]{0,10}",
        trailing_dot in any::<bool>(),
    ) {
        let host = format!("{name}.{last}{}", if trailing_dot { "." } else { "" });
        prop_assert_eq!(validate_domain(&host, ROOT), Err(DomainError::NumericEnding), "{}", host);
    }

    /// Internationalised names are stored in their punycode form, whatever
    /// their case, and that form means the same name.
    #[test]
    fn internationalised_names_are_stored_as_punycode(
        label in "[a-zà-öø-þа-я]{1,15}",
        sub in "([a-z0-9]{1,10}\\.)?",
        tld in "[a-z]{2,6}",
    ) {
        let typed = format!("{sub}{label}.{tld}");
        let stored = validate_domain(&typed, ROOT);
        prop_assert!(stored.is_ok(), "{typed}: {stored:?}");
        let stored = stored.unwrap();
        prop_assert!(stored.is_ascii());
        prop_assert_eq!(stored.to_ascii_lowercase(), stored.clone());
        prop_assert_eq!(validate_domain(&typed.to_uppercase(), ROOT), Ok(stored.clone()));
        prop_assert_eq!(validate_domain(&stored, ROOT), Ok(stored.clone()));
        prop_assert_eq!(stored.starts_with("xn--") || stored.contains(".xn--"), !typed.is_ascii());
        let (unicode, result) = idna::domain_to_unicode(&stored);
        prop_assert!(result.is_ok());
        prop_assert_eq!(unicode, typed);
    }

    #[test]
    fn colours_accepted_print_as_six_lower_case_hex_digits(raw in ".{0,12}|#[0-9a-fA-F]{6}") {
        if let Some(colour) = Color::parse(&raw) {
            let shown = colour.to_string();
            prop_assert_eq!(shown.len(), 7);
            prop_assert!(shown.starts_with('#'));
            prop_assert!(shown[1..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(Color::parse(&shown), Some(colour));
            // The text colour chosen is the more readable of the two.
            let (white, ink) = (Color::parse("#ffffff").unwrap(), Color::parse("#111827").unwrap());
            let best = colour.contrast(white).max(colour.contrast(ink));
            prop_assert!((colour.contrast(colour.readable_text()) - best).abs() < 1e-9);
        }
    }

    #[test]
    fn emails_accepted_have_one_at_and_no_markup(raw in ".{0,300}") {
        if let Ok(email) = clean_email(&raw) {
            prop_assert_eq!(email.matches('@').count(), 1);
            prop_assert!(email.len() <= 254);
            prop_assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>'));
        }
    }

    #[test]
    fn display_names_are_trimmed_bounded_and_printable(raw in ".{0,200}") {
        if let Ok(name) = clean_display_name(&raw) {
            prop_assert_eq!(name.trim(), name.as_str());
            prop_assert!((1..=100).contains(&name.chars().count()));
            prop_assert!(!name.chars().any(char::is_control));
        }
    }
}

/// What the task form reads (as the handlers declare their forms).
#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct AnyTaskForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: String,
}

/// Runs the CSRF-checked form extractor on `body`, with `token` as the
/// request's expected token: `Ok(fields)` or the rejection's status.
fn extract_form(body: Vec<u8>, token: &str) -> Result<AnyTaskForm, u16> {
    use axum::extract::FromRequest;
    use axum::response::IntoResponse;
    use tenantry::web::{CsrfForm, CsrfToken};
    let mut request = axum::http::Request::post("/tasks")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body))
        .unwrap();
    request.extensions_mut().insert(CsrfToken(token.to_owned()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime
        .block_on(CsrfForm::<AnyTaskForm>::from_request(request, &()))
        .map(|CsrfForm(form)| form)
        .map_err(|rejection| rejection.into_response().status().as_u16())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any bytes at all: a form, or a 400/403, never a panic; what gets
    /// through had the one right token and is valid UTF-8 with no U+FFFD.
    #[test]
    fn form_bodies_are_a_form_or_a_clean_refusal(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        with_token in any::<bool>(),
    ) {
        let mut body = body;
        if with_token {
            body.extend_from_slice(b"&csrf_token=tok3n");
        }
        match extract_form(body.clone(), "tok3n") {
            Ok(form) => {
                prop_assert!(with_token);
                for field in [&form.title, &form.description, &form.status] {
                    prop_assert!(!field.contains(char::REPLACEMENT_CHARACTER), "lossy text let through");
                }
            }
            Err(status) => prop_assert!([400, 403].contains(&status), "{status}"),
        }
    }

    /// Printable text in any field survives the form round trip unchanged
    /// (U+FFFD aside: it is what lossy decoding leaves, so it is refused).
    #[test]
    fn form_fields_round_trip(
        title in "[^\\p{C}\\x{FFFD}]{0,100}",
        description in "[^\\p{C}\\x{FFFD}]{0,100}",
    ) {
        let body = serde_urlencoded::to_string([
            ("title", title.as_str()),
            ("description", description.as_str()),
            ("csrf_token", "tok3n"),
        ])
        .unwrap();
        let form = extract_form(body.into_bytes(), "tok3n");
        prop_assert!(form.is_ok(), "{form:?}");
        let form = form.unwrap();
        prop_assert_eq!(form.title, title);
        prop_assert_eq!(form.description, description);
    }
}
