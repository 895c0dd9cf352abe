//! What every page's layout needs to know about the site it is on.

use crate::tenancy::Site;

/// The branded frame of a page: name, theme and logo of the current site.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub site_name: String,
    /// Set on a tenant's site: the stylesheet and logo are that tenant's.
    pub tenant: Option<TenantChrome>,
}

#[derive(Clone, Debug)]
pub struct TenantChrome {
    pub slug: String,
    pub theme: &'static str,
    /// Cache-busting query for `/theme.css`.
    pub version: i64,
    /// Cache-busting query for `/brand/logo`, when there is a logo.
    pub logo: Option<String>,
    pub initials: String,
}

impl Chrome {
    pub fn for_site(site: &Site) -> Chrome {
        match site {
            Site::ControlPanel => Chrome {
                site_name: "Tenantry control panel".into(),
                tenant: None,
            },
            Site::Tenant(t) => {
                let b = crate::branding::of(t);
                Chrome {
                    site_name: b.display_name.clone(),
                    tenant: Some(TenantChrome {
                        slug: t.slug.clone(),
                        theme: b.theme.as_str(),
                        version: b.version,
                        logo: b.logo.as_ref().map(|l| l.sha256.chars().take(16).collect()),
                        initials: initials(&b.display_name),
                    }),
                }
            }
        }
    }

    pub fn theme(&self) -> &'static str {
        self.tenant.as_ref().map_or("light", |t| t.theme)
    }
}

/// Up to two initials of a name, for the fallback logo and favicon.
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}
