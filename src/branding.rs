//! A tenant's look: name, colours, theme and logo. The application's own
//! columns of `public.tenants`, loaded with each tenant by the registry as
//! its profile ([`PROFILE`]), so every page is branded without a query.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, LazyLock};

use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::tenancy::Tenant;
use crate::tenancy::registry::ProfileColumns;

/// A colour as `#rrggbb`, lower-case. Nothing else ever reaches CSS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color([u8; 3]);

impl Color {
    pub fn parse(input: &str) -> Option<Color> {
        let hex = input.trim().strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Color([byte(0)?, byte(2)?, byte(4)?]))
    }

    /// WCAG 2 relative luminance.
    pub fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// WCAG 2 contrast ratio between two colours (1 to 21).
    pub fn contrast(self, other: Color) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }

    /// Black or white, whichever reads better on this colour.
    pub fn readable_text(self) -> Color {
        let (white, black) = (Color([255; 3]), Color([17, 24, 39]));
        if self.contrast(white) >= self.contrast(black) {
            white
        } else {
            black
        }
    }

    /// Whether white text on this colour meets WCAG AA for normal text (4.5:1).
    pub fn white_text_passes_aa(self) -> bool {
        self.contrast(Color([255; 3])) >= 4.5
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn parse(input: &str) -> Option<Theme> {
        match input {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// What a stored logo is known by without loading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoRef {
    pub content_type: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branding {
    pub display_name: String,
    pub primary: Color,
    pub accent: Color,
    pub theme: Theme,
    pub logo: Option<LogoRef>,
    /// Bumped on every change; the ETag of the tenant's stylesheet.
    pub version: i64,
}

/// Trims a display name and checks it: 1 to 100 characters, no control characters.
pub fn clean_display_name(input: &str) -> Result<String, &'static str> {
    let name = input.trim();
    if name.is_empty() {
        return Err("enter a name");
    }
    if name.chars().count() > 100 {
        return Err("a name is at most 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("a name cannot contain control characters");
    }
    Ok(name.to_owned())
}

/// The branding columns the registry reads with every tenant.
pub const PROFILE: ProfileColumns = ProfileColumns {
    select: "t.display_name, t.primary_color, t.accent_color, t.theme, \
             t.logo_content_type, t.logo_sha256, t.branding_version",
    parse: branding_from_row,
};

fn branding_from_row(row: &PgRow) -> Option<Arc<dyn Any + Send + Sync>> {
    let text = |name: &str| row.try_get::<String, _>(name).ok();
    let logo_type: Option<String> = row.try_get("logo_content_type").ok()?;
    let logo_sha: Option<String> = row.try_get("logo_sha256").ok()?;
    let branding = Branding {
        display_name: text("display_name")?,
        primary: Color::parse(&text("primary_color")?)?,
        accent: Color::parse(&text("accent_color")?)?,
        theme: Theme::parse(&text("theme")?)?,
        logo: logo_type
            .zip(logo_sha)
            .map(|(content_type, sha256)| LogoRef {
                content_type,
                sha256,
            }),
        version: row.try_get("branding_version").ok()?,
    };
    Some(Arc::new(branding))
}

/// The branding of a tenant the registry loaded with [`PROFILE`].
pub fn of(tenant: &Tenant) -> &Branding {
    static NONE: LazyLock<Branding> = LazyLock::new(|| Branding {
        display_name: "Tenantry".into(),
        primary: Color::parse("#4f46e5").expect("a colour"),
        accent: Color::parse("#0ea5e9").expect("a colour"),
        theme: Theme::Light,
        logo: None,
        version: 0,
    });
    tenant.profile::<Branding>().unwrap_or(&NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_strictly_and_print_lower_case() {
        assert_eq!(Color::parse("#AABBCC").unwrap().to_string(), "#aabbcc");
        for bad in [
            "red",
            "#abc",
            "#abcdeg",
            "red;}body{display:none",
            "#aabbcc;",
            "",
        ] {
            assert!(Color::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn readable_text_follows_contrast() {
        assert_eq!(
            Color::parse("#000000").unwrap().readable_text().to_string(),
            "#ffffff"
        );
        assert_eq!(
            Color::parse("#ffff00").unwrap().readable_text().to_string(),
            "#111827"
        );
        assert!(Color::parse("#4f46e5").unwrap().white_text_passes_aa());
        assert!(!Color::parse("#ffff00").unwrap().white_text_passes_aa());
    }
}
