//! The multitenancy core: which tenant a request belongs to, and how its data
//! is reached, created and migrated. Free of any one application's features:
//! what an application keeps about a tenant (a name, a look) it passes in as
//! a profile (`registry::ProfileColumns`), with its migrations
//! (`migrate`) and its provisioning rows (`provision::Provisioning::conn`).

pub mod affinity;
pub mod compact;
pub mod db;
pub mod export;
pub mod host;
pub mod migrate;
pub mod nodes;
pub mod provision;
pub mod registry;
pub mod resolve;
pub mod schema;
pub mod sessions;
mod slot;
pub mod spares;
pub mod sql_split;
pub mod tenant;

pub use affinity::TenantPool;
pub use db::{PublicDb, TenantDb};
pub use registry::TenantRegistry;
pub use schema::{SchemaName, Slug};
pub use tenant::{Site, Tenant, TenantStatus};

#[cfg(test)]
mod boundary {
    /// The core stands alone: no file under `src/tenancy/` names a module
    /// of the crate outside it (the sites, the web layer, the app state…).
    #[test]
    fn the_core_names_nothing_outside_itself() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tenancy");
        let mut offending = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    // A path, not the text of one (this test's own strings).
                    let outside = code.match_indices("crate::").any(|(i, _)| {
                        !code[..i].ends_with('"')
                            && !code[i + "crate::".len()..].starts_with("tenancy")
                    });
                    if outside || code.contains(concat!("super::", "super")) {
                        offending.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            offending.is_empty(),
            "the tenancy core names modules outside it:\n{}",
            offending.join("\n")
        );
    }
}
