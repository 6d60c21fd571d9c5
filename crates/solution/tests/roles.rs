//! Solution role files in every variant the project writes itself (tests/fixtures/solution),
//! each with its expected privilege count per level; errors; planning; export round trips.

use std::io::Write as _;
use std::path::PathBuf;

use strata_engine::privilege_names::PrivilegeName;
use strata_engine::{Depth, Organization, Privilege};
use strata_ops::{Operation, apply_all};
use strata_solution::{
    ImportOptions, RoleAction, SolutionError, SolutionRole, export, plan, read_roles,
    read_roles_many,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn fixture(path: &str) -> Result<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/solution");
    Ok((path.to_owned(), std::fs::read(dir.join(path))?))
}

fn roles_of(path: &str) -> Result<Vec<SolutionRole>> {
    let (name, bytes) = fixture(path)?;
    Ok(read_roles(&name, &bytes)?)
}

/// Basic, Local, Deep, Global.
fn counts(role: &SolutionRole) -> [usize; 4] {
    role.count_by_level()
}

#[test]
fn unpacked_role_with_description_and_misc() -> Result {
    let roles = roles_of("Roles/Sales Rep.xml")?;
    assert_eq!(roles.len(), 1);
    let r = &roles[0];
    assert_eq!(r.name, "Sales Rep");
    assert_eq!(r.inherited, Some(true));
    assert_eq!(counts(r), [3, 2, 1, 4]);
    assert_eq!(
        r.guid.map(|g| g.to_string()).as_deref(),
        Some("6f7c1a2e-0b7d-4c3e-9a51-2d3f4e5a6b7c")
    );
    assert_eq!(
        r.privileges[8].meaning,
        PrivilegeName::Misc("prvExportToExcel")
    );
    assert_eq!(r.privileges[8].line, 16);
    Ok(())
}

#[test]
fn level_before_name_crlf_and_no_isinherited() -> Result {
    let r = &roles_of("Roles/Case Agent.xml")?[0];
    assert_eq!(r.inherited, None);
    assert_eq!(counts(r), [1, 2, 0, 1]);
    assert_eq!(r.privileges[0].line, 5);
    Ok(())
}

#[test]
fn attributes_split_across_lines_with_bom() -> Result {
    let r = &roles_of("Roles/Project Lead.xml")?[0];
    assert_eq!(r.name, "Project Lead");
    assert_eq!(r.inherited, Some(false));
    assert_eq!(counts(r), [2, 0, 1, 1]);
    assert!(matches!(
        &r.privileges[2].meaning,
        PrivilegeName::Table { privilege: Privilege::Write, table, .. } if table == "cr123_project"
    ));
    Ok(())
}

#[test]
fn non_latin_names_with_bom_and_crlf() -> Result {
    let r = &roles_of("Roles/Менеджер.xml")?[0];
    assert_eq!(r.name, "Менеджер продаж 営業 ΔΣ");
    assert_eq!(counts(r), [1, 1, 0, 1]);
    Ok(())
}

#[test]
fn packed_customizations_reads_only_import_export_roles() -> Result {
    let roles = roles_of("customizations.xml")?;
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Service Manager", "Viewer"]);
    assert_eq!(counts(&roles[0]), [1, 1, 2, 3]);
    assert_eq!(counts(&roles[1]), [2, 0, 0, 0]);
    Ok(())
}

#[test]
fn the_30_kb_all_global_role() -> Result {
    let (_, bytes) = fixture("all-global.xml")?;
    assert!(bytes.len() >= 30_000);
    let r = &roles_of("all-global.xml")?[0];
    assert_eq!(counts(r), [0, 0, 0, 496]);
    let misc = r
        .privileges
        .iter()
        .filter(|p| matches!(p.meaning, PrivilegeName::Misc(_)))
        .count();
    // prvAssignTerritory and prvAssignPosition are miscellaneous privileges (D60).
    assert_eq!(misc, 2);
    Ok(())
}

fn zip_of(entries: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options)?;
            zip.write_all(bytes)?;
        }
        zip.finish()?;
    }
    Ok(out.into_inner())
}

#[test]
fn a_solution_zip_holding_customizations_xml() -> Result {
    let (_, xml) = fixture("customizations.xml")?;
    let zip = zip_of(&[
        ("solution.xml", b"<ImportExportXml />"),
        ("[Content_Types].xml", b"<Types />"),
        ("customizations.xml", &xml),
    ])?;
    let roles = read_roles("Sales_1_0.zip", &zip)?;
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0].file, "Sales_1_0.zip!customizations.xml");
    assert_eq!(counts(&roles[0]), [1, 1, 2, 3]);
    Ok(())
}

fn error_of(file: &str, text: &[u8]) -> SolutionError {
    match read_roles(file, text) {
        Err(e) => e,
        Ok(roles) => SolutionError {
            code: "no_error",
            file: String::new(),
            line: 0,
            column: 0,
            value: format!("{roles:?}"),
            message: String::new(),
        },
    }
}

#[test]
fn bad_input_names_file_line_and_value() -> Result {
    let e = error_of(
        "bad.xml",
        b"<Role id=\"{6f7c1a2e-0b7d-4c3e-9a51-2d3f4e5a6b7c}\" name=\"R\">\n  <RolePrivileges>\n    <RolePrivilege name=\"prvReadAccount\" level=\"Global\">\n  </RolePrivileges>\n</Role>\n",
    );
    assert_eq!(
        (e.code, e.file.as_str(), e.line),
        ("solution_malformed_xml", "bad.xml", 4)
    );
    let e = error_of("eof.xml", b"<Role name=\"R\">\n  <RolePrivileges>\n");
    assert_eq!((e.code, e.line), ("solution_malformed_xml", 3));

    let e = error_of(
        "level.xml",
        b"<Role name=\"R\">\r\n <RolePrivileges>\r\n  <RolePrivilege\r\n   name=\"prvReadAccount\" level=\"Organization\" />\r\n </RolePrivileges>\r\n</Role>",
    );
    assert_eq!(
        (e.code, e.line, e.column, e.value.as_str()),
        ("solution_unknown_level", 3, 3, "Organization")
    );
    let e = error_of(
        "p.xml",
        b"<Role name=\"R\"><RolePrivileges><RolePrivilege name=\"ReadAccount\" level=\"Basic\"/></RolePrivileges></Role>",
    );
    assert_eq!(
        (e.code, e.value.as_str()),
        ("solution_unknown_privilege", "ReadAccount")
    );
    let e = error_of(
        "p.xml",
        b"<Role name=\"R\"><RolePrivileges><RolePrivilege name=\"prvExportToExcell\" level=\"Global\"/></RolePrivileges></Role>",
    );
    assert_eq!(e.code, "solution_unknown_privilege");
    assert!(e.message.contains("prvExportToExcel"), "{e}");
    let e = error_of("x.xml", b"<Solution />");
    assert_eq!(e.code, "solution_not_roles");
    let e = error_of(
        "x.xml",
        b"<Role name=\"R\" isinherited=\"2\"><RolePrivileges /></Role>",
    );
    assert_eq!((e.code, e.value.as_str()), ("solution_bad_inherited", "2"));

    let zip = zip_of(&[("solution.xml", b"<ImportExportXml />")])?;
    let e = error_of("s.zip", &zip);
    assert_eq!(
        (e.code, e.file.as_str()),
        ("solution_no_customizations", "s.zip")
    );

    let big = vec![b' '; strata_solution::MAX_FILE_BYTES + 1];
    assert_eq!(error_of("big.xml", &big).code, "solution_too_large");

    // A zip bomb: a small zip whose customizations.xml inflates past the limit.
    let mut inflated = b"<ImportExportXml>".to_vec();
    inflated.resize(
        usize::try_from(strata_solution::MAX_UNCOMPRESSED_BYTES)? + 10,
        b' ',
    );
    let bomb = zip_of(&[("customizations.xml", &inflated)])?;
    assert!(bomb.len() < 1_000_000);
    assert_eq!(error_of("bomb.zip", &bomb).code, "solution_too_large");

    let deep = format!("<Role name=\"R\">{}", "<a>".repeat(100));
    assert_eq!(error_of("d.xml", deep.as_bytes()).code, "solution_too_deep");
    Ok(())
}

#[test]
fn a_role_named_twice_is_refused() -> Result {
    let (n1, b1) = fixture("Roles/Sales Rep.xml")?;
    let (n2, b2) = fixture("Roles/Sales Rep.xml")?;
    let e = read_roles_many([(n1.as_str(), b1.as_slice()), (n2.as_str(), b2.as_slice())])
        .err()
        .map(|e| e.code);
    assert_eq!(e, Some("solution_duplicate_role"));
    Ok(())
}

fn organisation() -> Result<Organization> {
    let mut org = Organization::new();
    let ops: Vec<Operation> = serde_json::from_str(
        r#"[
        {"op":"add_business_unit","name":"Root"},
        {"op":"add_table","name":"account"},
        {"op":"add_table","name":"contact"},
        {"op":"add_table","name":"opportunity"}
    ]"#,
    )?;
    apply_all(&mut org, &ops).map_err(|(i, e)| format!("{i}: {e}"))?;
    Ok(org)
}

fn all_fixture_roles() -> Result<Vec<SolutionRole>> {
    let files = [
        "Roles/Sales Rep.xml",
        "Roles/Case Agent.xml",
        "Roles/Project Lead.xml",
        "Roles/Менеджер.xml",
        "customizations.xml",
    ];
    let inputs: Vec<(String, Vec<u8>)> = files.iter().map(|f| fixture(f)).collect::<Result<_>>()?;
    Ok(read_roles_many(
        inputs.iter().map(|(n, b)| (n.as_str(), b.as_slice())),
    )?)
}

#[test]
fn unknown_tables_are_skipped_or_created() -> Result {
    let mut org = organisation()?;
    let roles = all_fixture_roles()?;
    let p = plan(&org, &roles, ImportOptions::default());
    assert_eq!(
        p.tables_unknown,
        ["cr123_project", "cr123_task", "incident"]
    );
    let case_agent = &p.roles[1];
    assert_eq!(case_agent.action, RoleAction::Create);
    assert_eq!(case_agent.skipped.len(), 2);
    assert_eq!(case_agent.table_privileges, 1);
    apply_all(&mut org, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;

    let mut org = organisation()?;
    let p = plan(
        &org,
        &roles,
        ImportOptions {
            create_tables: true,
        },
    );
    assert_eq!(
        p.tables_created,
        ["cr123_project", "cr123_task", "incident"]
    );
    assert!(p.roles.iter().all(|r| r.skipped.is_empty()));
    apply_all(&mut org, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;
    let lead = org.role_id("Project Lead").ok_or("no role")?;
    let project = org.table_id("cr123_project").ok_or("no table")?;
    assert_eq!(
        org.role(lead).depth(project, Privilege::Read),
        Depth::ParentChild
    );
    assert_eq!(org.role(lead).depth(project, Privilege::Write), Depth::User);
    let rep = org.role(org.role_id("Sales Rep").ok_or("no role")?);
    assert_eq!(rep.misc, ["prvBulkEdit", "prvExportToExcel"]);

    // Importing again changes nothing.
    let again = plan(
        &org,
        &roles,
        ImportOptions {
            create_tables: true,
        },
    );
    assert!(again.operations.is_empty(), "{:?}", again.operations);
    assert!(
        again
            .roles
            .iter()
            .all(|r| matches!(r.action, RoleAction::Unchanged { matched_by: "name" }))
    );
    Ok(())
}

#[test]
fn export_then_import_gives_the_same_model() -> Result {
    let mut org = organisation()?;
    let roles = all_fixture_roles()?;
    let p = plan(
        &org,
        &roles,
        ImportOptions {
            create_tables: true,
        },
    );
    apply_all(&mut org, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;
    let files = export(&org, &[])?;
    assert_eq!(files.len(), 7);
    assert_eq!(files[0].path, "Roles/Case Agent.xml");
    // Byte-stable.
    assert_eq!(files, export(&org, &[])?);

    // The exported unpacked files and the exported customizations.xml each re-import with
    // the same privilege counts per role as the model holds, and change nothing.
    let unpacked: Vec<&strata_solution::ExportedFile> = files
        .iter()
        .filter(|f| f.path.starts_with("Roles/"))
        .collect();
    let from_files = read_roles_many(
        unpacked
            .iter()
            .map(|f| (f.path.as_str(), f.text.as_bytes())),
    )?;
    let packed = files.last().ok_or("no customizations")?;
    let from_packed = read_roles(&packed.path, packed.text.as_bytes())?;
    assert_eq!(from_files.len(), 6);
    for (a, b) in from_files.iter().zip(&from_packed) {
        let cells = |r: &SolutionRole| -> Vec<(String, strata_solution::Level)> {
            r.privileges
                .iter()
                .map(|p| (p.name.clone(), p.level))
                .collect()
        };
        assert_eq!((&a.name, cells(a), a.guid), (&b.name, cells(b), b.guid));
    }
    for (original, exported) in [
        ("Sales Rep", [3, 2, 1, 4]),
        ("Case Agent", [1, 2, 0, 1]),
        ("Project Lead", [2, 0, 1, 1]),
        ("Service Manager", [1, 1, 2, 3]),
    ] {
        let r = from_files
            .iter()
            .find(|r| r.name == original)
            .ok_or(original)?;
        assert_eq!(r.count_by_level(), exported, "{original}");
    }
    let again = plan(&org, &from_packed, ImportOptions::default());
    assert!(again.operations.is_empty(), "{:?}", again.operations);
    assert!(
        again
            .roles
            .iter()
            .all(|r| matches!(r.action, RoleAction::Unchanged { matched_by: "guid" }))
    );

    // Into a fresh organisation: the same grids and miscellaneous privileges.
    let mut fresh = organisation()?;
    let p = plan(
        &fresh,
        &from_packed,
        ImportOptions {
            create_tables: true,
        },
    );
    apply_all(&mut fresh, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;
    for r in org.role_ids() {
        let a = org.role(r);
        if a.system_administrator || a.deleted {
            continue;
        }
        let b = fresh.role(fresh.role_id(&a.name).ok_or("missing role")?);
        assert_eq!(a.misc, b.misc);
        for t in org.table_ids() {
            let Some(u) = fresh.table_id(&org.table(t).name) else {
                continue;
            };
            for priv_ in Privilege::ALL {
                assert_eq!(a.depth(t, priv_), b.depth(u, priv_), "{} {}", a.name, priv_);
            }
        }
    }
    Ok(())
}

#[test]
fn a_role_renamed_in_dataverse_is_matched_by_guid() -> Result {
    let mut org = organisation()?;
    let roles = roles_of("Roles/Sales Rep.xml")?;
    let p = plan(
        &org,
        &roles,
        ImportOptions {
            create_tables: true,
        },
    );
    apply_all(&mut org, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;
    let files = export(&org, &["Sales Rep".to_owned()])?;
    let text = files[0]
        .text
        .replace("name=\"Sales Rep\"", "name=\"Account Rep\"")
        .replace(
            "<RolePrivilege name=\"prvBulkEdit\" level=\"Global\" />",
            "",
        );
    let renamed = read_roles("Roles/Account Rep.xml", text.as_bytes())?;
    let p = plan(&org, &renamed, ImportOptions::default());
    assert_eq!(
        p.roles[0].action,
        RoleAction::Update {
            matched_by: "guid",
            renamed_from: Some("Sales Rep".into())
        }
    );
    apply_all(&mut org, &p.operations).map_err(|(i, e)| format!("{i}: {e}"))?;
    assert!(org.role_id("Sales Rep").is_none());
    let r = org.role(org.role_id("Account Rep").ok_or("not renamed")?);
    assert_eq!(r.misc, ["prvExportToExcel"]);
    Ok(())
}

#[test]
fn a_misc_privilege_outside_the_catalogue_that_the_organisation_holds_comes_back() -> Result {
    let mut org = organisation()?;
    let ops: Vec<Operation> = serde_json::from_str(
        r#"[{"op":"add_role","name":"Marketing","misc":["prvCreateQuickCampaign","prvPrint"],
            "privileges":{"account":{"read":"organization"}}}]"#,
    )?;
    apply_all(&mut org, &ops).map_err(|(i, e)| format!("{i}: {e}"))?;
    let files = export(&org, &[])?;
    let packed = files.last().ok_or("no customizations")?;
    assert!(
        packed
            .text
            .contains("name=\"prvCreateQuickCampaign\" level=\"Global\"")
    );
    let roles = read_roles(&packed.path, packed.text.as_bytes())?;
    let p = plan(&org, &roles, ImportOptions::default());
    assert!(p.operations.is_empty(), "{:?}", p.roles);
    assert!(p.tables_unknown.is_empty());
    // In an organisation that has never heard of it, it is an unknown table name (D60).
    let fresh = organisation()?;
    let p = plan(
        &fresh,
        &roles,
        ImportOptions {
            create_tables: true,
        },
    );
    assert_eq!(p.roles[0].skipped.len(), 1);
    assert_eq!(p.tables_unknown, ["quickcampaign"]);
    Ok(())
}

#[test]
fn a_strata_table_named_like_a_renamed_standard_base_comes_back() -> Result {
    let mut org = organisation()?;
    let ops: Vec<Operation> = serde_json::from_str(
        r#"[{"op":"add_table","name":"note"},
            {"op":"add_role","name":"Notes","privileges":{"note":{"read":"user"}}}]"#,
    )?;
    apply_all(&mut org, &ops).map_err(|(i, e)| format!("{i}: {e}"))?;
    let files = export(&org, &[])?;
    let packed = files.last().ok_or("no customizations")?;
    assert!(packed.text.contains("name=\"prvReadnote\" level=\"Basic\""));
    let roles = read_roles(&packed.path, packed.text.as_bytes())?;
    let p = plan(&org, &roles, ImportOptions::default());
    assert!(p.operations.is_empty(), "{:?}", p.roles);
    Ok(())
}
