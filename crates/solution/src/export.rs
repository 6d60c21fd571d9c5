//! Roles as Dataverse solution XML: unpacked `Roles/<name>.xml` files and a packed
//! `customizations.xml`. Byte-stable: privileges sorted by name, roles by name, `\r\n` line
//! ends as SolutionPackager writes them, no timestamps.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use strata_engine::privilege_names::table_privilege_name;
use strata_engine::{Guid, GuidKind, Inheritance, Organization, Privilege, RoleId};

use crate::read::Level;

/// One file of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedFile {
    /// Relative path (`Roles/Sales Manager.xml`, `customizations.xml`).
    pub path: String,
    /// UTF-8 bytes.
    pub text: String,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The role's privileges as (name, level), sorted by name: its grid through the engine's
/// catalogue, its miscellaneous privileges at Global (D62).
fn privileges(org: &Organization, id: RoleId) -> Vec<(String, Level)> {
    let role = org.role(id);
    let mut out: Vec<(String, Level)> = Vec::new();
    for (t, depths) in &role.privileges {
        let table = &org.table(*t).name;
        for p in Privilege::ALL {
            if let Some(level) = Level::of_depth(depths[p.index()]) {
                out.push((table_privilege_name(p, table), level));
            }
        }
    }
    let misc: BTreeSet<&String> = role.misc.iter().collect();
    for m in misc {
        out.push((m.clone(), Level::Global));
    }
    out.sort_by(|a, b| {
        a.0.to_ascii_lowercase()
            .cmp(&b.0.to_ascii_lowercase())
            .then(a.0.cmp(&b.0))
    });
    out.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
    out
}

fn role_element(org: &Organization, id: RoleId, indent: &str, namespace: bool) -> String {
    let role = org.role(id);
    let guid = Guid::derived(GuidKind::Role, id.index());
    let inherited = match role.inheritance {
        Inheritance::UserAndTeam => "1",
        Inheritance::TeamOnly => "0",
    };
    let mut s = String::new();
    let ns = if namespace {
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    } else {
        ""
    };
    let _ = write!(
        s,
        "{indent}<Role id=\"{{{guid}}}\" name=\"{}\" isinherited=\"{inherited}\"{ns}>\r\n",
        escape(&role.name)
    );
    let _ = write!(s, "{indent}  <IsCustomizable>1</IsCustomizable>\r\n");
    let list = privileges(org, id);
    if list.is_empty() {
        let _ = write!(s, "{indent}  <RolePrivileges />\r\n");
    } else {
        let _ = write!(s, "{indent}  <RolePrivileges>\r\n");
        for (name, level) in list {
            let _ = write!(
                s,
                "{indent}    <RolePrivilege name=\"{}\" level=\"{}\" />\r\n",
                escape(&name),
                level.name()
            );
        }
        let _ = write!(s, "{indent}  </RolePrivileges>\r\n");
    }
    let _ = write!(s, "{indent}</Role>\r\n");
    s
}

/// An unpacked role file (`Roles/<name>.xml`'s content).
#[must_use]
pub fn role_xml(org: &Organization, id: RoleId) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n{}",
        role_element(org, id, "", true)
    )
}

/// A packed `customizations.xml` holding these roles (and nothing else of a solution).
#[must_use]
pub fn customizations_xml(org: &Organization, ids: &[RoleId]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<ImportExportXml xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" OrganizationVersion=\"9.2.0.0\" OrganizationSchemaType=\"Standard\">\r\n  <Entities />\r\n",
    );
    if ids.is_empty() {
        s.push_str("  <Roles />\r\n");
    } else {
        s.push_str("  <Roles>\r\n");
        for id in ids {
            s.push_str(&role_element(org, *id, "    ", false));
        }
        s.push_str("  </Roles>\r\n");
    }
    s.push_str("  <Workflows />\r\n  <FieldSecurityProfiles />\r\n  <Templates />\r\n  <EntityMaps />\r\n  <EntityRelationships />\r\n  <OrganizationSettings />\r\n  <optionsets />\r\n  <CustomControls />\r\n  <EntityDataProviders />\r\n  <Languages>\r\n    <Language>1033</Language>\r\n  </Languages>\r\n</ImportExportXml>\r\n");
    s
}

/// The file name of a role in an unpacked solution: its name with the characters file systems
/// refuse replaced by `_`.
#[must_use]
pub fn role_file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let clean = clean.trim_matches(|c: char| c == '.' || c.is_whitespace());
    format!("Roles/{}.xml", if clean.is_empty() { "_" } else { clean })
}

/// The roles to export, sorted by name: every live role except the System Administrator role
/// (its privileges are a bypass, not a list: D62), or the named ones; then every unpacked file
/// and the `customizations.xml` holding them all.
///
/// # Errors
///
/// The first name that is not a role (`unknown role`), or that is a System Administrator role.
pub fn export(org: &Organization, names: &[String]) -> Result<Vec<ExportedFile>, String> {
    let mut ids: Vec<RoleId> = if names.is_empty() {
        org.role_ids()
            .filter(|r| {
                let role = org.role(*r);
                !role.deleted && !role.system_administrator
            })
            .collect()
    } else {
        let mut ids = Vec::new();
        for n in names {
            let id = org
                .role_id(n)
                .ok_or_else(|| format!("unknown role `{n}`"))?;
            if org.role(id).system_administrator {
                return Err(format!(
                    "`{n}` is a System Administrator role: its privileges are every privilege, not a list (D62)"
                ));
            }
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    };
    ids.sort_by(|a, b| org.role(*a).name.cmp(&org.role(*b).name));
    let mut files = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for id in &ids {
        let mut path = role_file_name(&org.role(*id).name);
        if !used.insert(path.to_lowercase()) {
            path = format!(
                "{} {}.xml",
                path.trim_end_matches(".xml"),
                Guid::derived(GuidKind::Role, id.index())
            );
            used.insert(path.to_lowercase());
        }
        files.push(ExportedFile {
            path,
            text: role_xml(org, *id),
        });
    }
    files.push(ExportedFile {
        path: "customizations.xml".to_owned(),
        text: customizations_xml(org, &ids),
    });
    Ok(files)
}

/// Roles as read, written back as one `customizations.xml` (names and levels as written, ids
/// and `isinherited` kept): several unpacked files sent to a server as one body, one batch.
#[must_use]
pub fn roles_as_customizations(roles: &[crate::read::SolutionRole]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<ImportExportXml xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n  <Roles>\r\n",
    );
    for r in roles {
        let _ = write!(s, "    <Role name=\"{}\"", escape(&r.name));
        if let Some(g) = r.guid {
            let _ = write!(s, " id=\"{{{g}}}\"");
        }
        if let Some(i) = r.inherited {
            let _ = write!(s, " isinherited=\"{}\"", u8::from(i));
        }
        s.push_str(">\r\n      <RolePrivileges>\r\n");
        for p in &r.privileges {
            let _ = write!(
                s,
                "        <RolePrivilege name=\"{}\" level=\"{}\" />\r\n",
                escape(&p.name),
                p.level.name()
            );
        }
        s.push_str("      </RolePrivileges>\r\n    </Role>\r\n");
    }
    s.push_str("  </Roles>\r\n</ImportExportXml>\r\n");
    s
}
