//! The preview of a tenant's branded header that the create form and the
//! branding editor show, with its note on the contrast of the primary colour.

use crate::branding::Color;

/// Text on the primary colour: which colour pages use, and whether even that
/// fails WCAG AA.
#[derive(Clone, Debug)]
pub struct ContrastNote {
    pub text_color: String,
    pub ratio: String,
    pub fails_aa: bool,
}

impl ContrastNote {
    pub fn of(primary: &str) -> Option<ContrastNote> {
        let primary = Color::parse(primary)?;
        let text = primary.readable_text();
        let ratio = primary.contrast(text);
        Some(ContrastNote {
            text_color: text.to_string(),
            ratio: format!("{ratio:.1}"),
            fails_aa: ratio < 4.5,
        })
    }
}

/// What the live preview of the branded header starts with (the script in
/// `static/js/branding.js` keeps it in step with the form).
#[derive(Clone, Debug)]
pub struct Preview {
    pub name: String,
    pub initials: String,
    pub theme: String,
    pub logo: Option<String>,
    pub contrast: Option<ContrastNote>,
}

impl Preview {
    pub fn new(name: &str, primary: &str, theme: &str, logo: Option<String>) -> Preview {
        let name = if name.trim().is_empty() {
            "New tenant"
        } else {
            name.trim()
        };
        Preview {
            name: name.to_owned(),
            initials: crate::web::chrome::initials(name),
            theme: if theme == "dark" { "dark" } else { "light" }.to_owned(),
            logo,
            contrast: ContrastNote::of(primary),
        }
    }
}
