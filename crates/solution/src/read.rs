//! Reading roles from solution files: unpacked `Roles/*.xml`, packed `customizations.xml`, zip.

use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use strata_engine::privilege_names::{PrivilegeName, PrivilegeNameError, parse_privilege_name};
use strata_engine::{Depth, Guid};

use crate::error::{SolutionError, line_column};
use crate::{
    MAX_ELEMENT_DEPTH, MAX_FILE_BYTES, MAX_PRIVILEGES_PER_ROLE, MAX_ROLES, MAX_UNCOMPRESSED_BYTES,
    MAX_ZIP_ENTRIES,
};

/// A privilege level as solution XML writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// User.
    Basic,
    /// Business Unit.
    Local,
    /// Parent: Child Business Units.
    Deep,
    /// Organization.
    Global,
}

impl Level {
    /// Every level, smallest first.
    pub const ALL: [Level; 4] = [Level::Basic, Level::Local, Level::Deep, Level::Global];

    /// The XML spelling.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Level::Basic => "Basic",
            Level::Local => "Local",
            Level::Deep => "Deep",
            Level::Global => "Global",
        }
    }

    /// Parses the XML spelling (exact case, as the schema's enumeration).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Strata's depth.
    #[must_use]
    pub fn depth(self) -> Depth {
        match self {
            Level::Basic => Depth::User,
            Level::Local => Depth::BusinessUnit,
            Level::Deep => Depth::ParentChild,
            Level::Global => Depth::Organization,
        }
    }

    /// The level of a depth (`None` for no access).
    #[must_use]
    pub fn of_depth(depth: Depth) -> Option<Level> {
        match depth {
            Depth::None => None,
            Depth::User => Some(Level::Basic),
            Depth::BusinessUnit => Some(Level::Local),
            Depth::ParentChild => Some(Level::Deep),
            Depth::Organization => Some(Level::Global),
        }
    }
}

/// One `<RolePrivilege>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolePrivilegeEntry {
    /// The name as written.
    pub name: String,
    /// What it means.
    pub meaning: PrivilegeName,
    /// The level.
    pub level: Level,
    /// 1-based line in its file.
    pub line: usize,
}

/// One `<Role>` of a solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolutionRole {
    /// The role's name.
    pub name: String,
    /// Its id (`{guid}`), when it parses.
    pub guid: Option<Guid>,
    /// `isinherited`: `Some(true)` for "1", `Some(false)` for "0", `None` when absent.
    pub inherited: Option<bool>,
    /// The privileges in file order.
    pub privileges: Vec<RolePrivilegeEntry>,
    /// The file it came from.
    pub file: String,
    /// 1-based line of its `<Role>`.
    pub line: usize,
}

impl SolutionRole {
    /// How many privileges of each level ([`Level::ALL`] order).
    #[must_use]
    pub fn count_by_level(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for p in &self.privileges {
            counts[p.level as usize] += 1;
        }
        counts
    }
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";

/// The roles of several inputs (file name, bytes), in order; a role named twice (case
/// ignored) is refused.
///
/// # Errors
///
/// The first input's error; `solution_duplicate_role`; `solution_too_many_roles`.
pub fn read_roles_many<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<SolutionRole>, SolutionError> {
    let mut all: Vec<SolutionRole> = Vec::new();
    for (file, bytes) in inputs {
        for role in read_roles(file, bytes)? {
            if let Some(first) = all
                .iter()
                .find(|r| r.name.to_lowercase() == role.name.to_lowercase())
            {
                return Err(SolutionError::new(
                    "solution_duplicate_role",
                    &role.file,
                    (role.line, 1),
                    role.name.clone(),
                    format!(
                        "role named twice (first in {} line {})",
                        first.file, first.line
                    ),
                ));
            }
            all.push(role);
            if all.len() > MAX_ROLES {
                return Err(SolutionError::new(
                    "solution_too_many_roles",
                    file,
                    (0, 0),
                    MAX_ROLES.to_string(),
                    format!("more than {MAX_ROLES} roles in one import"),
                ));
            }
        }
    }
    Ok(all)
}

/// The roles of one input: a zip (sniffed by its signature) or XML.
///
/// # Errors
///
/// `solution_too_large`, `solution_bad_zip`, `solution_no_customizations`,
/// `solution_malformed_xml`, `solution_not_roles`, `solution_too_deep`,
/// `solution_missing_attribute`, `solution_unknown_level`, `solution_unknown_privilege`,
/// `solution_too_many_privileges`, `solution_bad_inherited` — each naming the file, line and
/// value.
pub fn read_roles(file: &str, bytes: &[u8]) -> Result<Vec<SolutionRole>, SolutionError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(SolutionError::new(
            "solution_too_large",
            file,
            (0, 0),
            bytes.len().to_string(),
            format!(
                "the file has {} bytes; the limit is {MAX_FILE_BYTES}",
                bytes.len()
            ),
        ));
    }
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(EMPTY_ZIP_MAGIC) {
        let (inner, xml) = customizations_from_zip(file, bytes)?;
        return read_xml(&inner, &xml);
    }
    read_xml(file, bytes)
}

fn customizations_from_zip(file: &str, bytes: &[u8]) -> Result<(String, Vec<u8>), SolutionError> {
    let bad = |e: zip::result::ZipError| {
        SolutionError::new(
            "solution_bad_zip",
            file,
            (0, 0),
            "",
            format!("not a readable zip: {e}"),
        )
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(bad)?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(SolutionError::new(
            "solution_too_large",
            file,
            (0, 0),
            archive.len().to_string(),
            format!(
                "the zip lists {} entries; the limit is {MAX_ZIP_ENTRIES}",
                archive.len()
            ),
        ));
    }
    let index = (0..archive.len()).find(|&i| {
        archive
            .name_for_index(i)
            .is_some_and(|n| n.is_ok_and(|n| n.eq_ignore_ascii_case("customizations.xml")))
    });
    let Some(index) = index else {
        return Err(SolutionError::new(
            "solution_no_customizations",
            file,
            (0, 0),
            "customizations.xml",
            "the zip holds no customizations.xml at its root: not a solution",
        ));
    };
    let entry = archive.by_index(index).map_err(bad)?;
    let name = format!("{file}!{}", entry.name().map_err(bad)?);
    if entry.size() > MAX_UNCOMPRESSED_BYTES {
        return Err(too_large_entry(&name, entry.size()));
    }
    let mut out = Vec::new();
    // The declared size may lie: read one byte past the limit at most.
    let read = entry
        .take(MAX_UNCOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            SolutionError::new(
                "solution_bad_zip",
                &name,
                (0, 0),
                "",
                format!("the entry cannot be read: {e}"),
            )
        })?;
    if read as u64 > MAX_UNCOMPRESSED_BYTES {
        return Err(too_large_entry(&name, read as u64));
    }
    Ok((name, out))
}

fn too_large_entry(name: &str, size: u64) -> SolutionError {
    SolutionError::new(
        "solution_too_large",
        name,
        (0, 0),
        size.to_string(),
        format!(
            "customizations.xml uncompressed is over the limit of {MAX_UNCOMPRESSED_BYTES} bytes"
        ),
    )
}

/// Line and column of increasing byte offsets, found by scanning each byte once (events come
/// in file order; an offset behind the last one is found from the start).
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Lines {
            text,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    fn at(&mut self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            return line_column(self.text, offset);
        }
        for b in &self.text[self.offset..offset] {
            if *b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if b & 0xC0 != 0x80 {
                // A character starts here (not a UTF-8 continuation byte).
                self.column += 1;
            }
        }
        self.offset = offset;
        (self.line, self.column)
    }
}

/// Where the reader is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not known yet (before the root).
    Unknown,
    /// Root `<Role>`: an unpacked role file.
    Unpacked,
    /// Root `<ImportExportXml>`: a packed customizations.xml.
    Packed,
}

struct Parser<'a> {
    file: &'a str,
    stack: Vec<Vec<u8>>,
    shape: Shape,
    roles: Vec<SolutionRole>,
    /// The role being read and the stack depth of its element.
    current: Option<(SolutionRole, usize)>,
}

fn read_xml(file: &str, bytes: &[u8]) -> Result<Vec<SolutionRole>, SolutionError> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if text.starts_with(b"\xFF\xFE") || text.starts_with(b"\xFE\xFF") {
        return Err(SolutionError::new(
            "solution_malformed_xml",
            file,
            (1, 1),
            "UTF-16",
            "UTF-16 text: solution files are UTF-8",
        ));
    }
    let mut reader = Reader::from_reader(text);
    let mut lines = Lines::new(text);
    let mut p = Parser {
        file,
        stack: Vec::new(),
        shape: Shape::Unknown,
        roles: Vec::new(),
        current: None,
    };
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            SolutionError::new(
                "solution_malformed_xml",
                file,
                line_column(text, at),
                "",
                format!("malformed XML: {e}"),
            )
        })?;
        let at = lines.at(before);
        match event {
            Event::Start(e) => {
                p.open(&e, at)?;
            }
            Event::Empty(e) => {
                p.open(&e, at)?;
                p.close();
            }
            Event::End(_) => p.close(),
            Event::Text(t) if p.stack.is_empty() && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(SolutionError::new(
                    "solution_malformed_xml",
                    file,
                    at,
                    "",
                    "malformed XML: text outside the root element",
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !p.stack.is_empty() {
        let open = String::from_utf8_lossy(p.stack.last().map_or(&[][..], Vec::as_slice));
        return Err(SolutionError::new(
            "solution_malformed_xml",
            file,
            line_column(text, text.len()),
            open.into_owned(),
            "malformed XML: the file ends inside an element",
        ));
    }
    if p.shape == Shape::Unknown {
        return Err(SolutionError::new(
            "solution_not_roles",
            file,
            (0, 0),
            "",
            "no root element: not a role file or customizations.xml",
        ));
    }
    Ok(p.roles)
}

impl Parser<'_> {
    fn err(
        &self,
        code: &'static str,
        at: (usize, usize),
        value: &str,
        message: String,
    ) -> SolutionError {
        SolutionError::new(code, self.file, at, value, message)
    }

    fn attrs(
        &self,
        e: &BytesStart<'_>,
        at: (usize, usize),
    ) -> Result<Vec<(String, String)>, SolutionError> {
        let mut out = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| {
                self.err(
                    "solution_malformed_xml",
                    at,
                    "",
                    format!("malformed XML: bad attribute: {err}"),
                )
            })?;
            let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let value = a.unescape_value().map_err(|err| {
                self.err(
                    "solution_malformed_xml",
                    at,
                    &key,
                    format!("malformed XML: attribute `{key}`: {err}"),
                )
            })?;
            out.push((key, value.into_owned()));
        }
        Ok(out)
    }

    fn open(&mut self, e: &BytesStart<'_>, at: (usize, usize)) -> Result<(), SolutionError> {
        let name = e.local_name().as_ref().to_vec();
        if self.stack.len() >= MAX_ELEMENT_DEPTH {
            return Err(self.err(
                "solution_too_deep",
                at,
                &String::from_utf8_lossy(&name),
                format!("elements nest deeper than {MAX_ELEMENT_DEPTH}"),
            ));
        }
        if self.stack.is_empty() {
            self.shape = match name.as_slice() {
                b"Role" => Shape::Unpacked,
                b"ImportExportXml" => Shape::Packed,
                other => {
                    return Err(self.err(
                        "solution_not_roles",
                        at,
                        &String::from_utf8_lossy(other),
                        "the root element is neither <Role> (an unpacked Roles/*.xml) nor <ImportExportXml> (customizations.xml)".into(),
                    ));
                }
            };
        }
        self.stack.push(name);
        let depth = self.stack.len();
        let role_depth = match self.shape {
            Shape::Unpacked => 1,
            _ => 3,
        };
        let is_role = depth == role_depth
            && self.stack.last().is_some_and(|n| n == b"Role")
            && (self.shape == Shape::Unpacked
                || (self.stack[0] == b"ImportExportXml" && self.stack[1] == b"Roles"));
        if is_role {
            self.start_role(e, at, depth)?;
        } else if let Some((_, rd)) = &self.current
            && depth == rd + 2
            && self.stack[*rd] == b"RolePrivileges"
            && self.stack[depth - 1] == b"RolePrivilege"
        {
            self.privilege(e, at)?;
        }
        Ok(())
    }

    fn start_role(
        &mut self,
        e: &BytesStart<'_>,
        at: (usize, usize),
        depth: usize,
    ) -> Result<(), SolutionError> {
        let attrs = self.attrs(e, at)?;
        let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(name) = get("name").filter(|n| !n.trim().is_empty()) else {
            return Err(self.err(
                "solution_missing_attribute",
                at,
                "name",
                "<Role> without a name".into(),
            ));
        };
        let guid = match get("id") {
            None => None,
            Some(id) => Some(id.trim().parse::<Guid>().map_err(|()| {
                self.err(
                    "solution_bad_id",
                    at,
                    &id,
                    format!("role `{name}`: id is not a GUID"),
                )
            })?),
        };
        let inherited = match get("isinherited").as_deref().map(str::trim) {
            None => None,
            Some("1" | "true") => Some(true),
            Some("0" | "false") => Some(false),
            Some(other) => {
                return Err(self.err(
                    "solution_bad_inherited",
                    at,
                    other,
                    format!("role `{name}`: isinherited is 0 or 1"),
                ));
            }
        };
        self.current = Some((
            SolutionRole {
                name: name.trim().to_owned(),
                guid,
                inherited,
                privileges: Vec::new(),
                file: self.file.to_owned(),
                line: at.0,
            },
            depth,
        ));
        Ok(())
    }

    fn privilege(&mut self, e: &BytesStart<'_>, at: (usize, usize)) -> Result<(), SolutionError> {
        let attrs = self.attrs(e, at)?;
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_owned())
        };
        let role = self.current.as_ref().map_or("", |(r, _)| r.name.as_str());
        let Some(name) = get("name").filter(|n| !n.is_empty()) else {
            return Err(self.err(
                "solution_missing_attribute",
                at,
                "name",
                format!("role `{role}`: <RolePrivilege> without a name"),
            ));
        };
        let Some(level_text) = get("level") else {
            return Err(self.err(
                "solution_missing_attribute",
                at,
                "level",
                format!("role `{role}`: <RolePrivilege name=\"{name}\"> without a level"),
            ));
        };
        let Some(level) = Level::from_name(&level_text) else {
            return Err(self.err(
                "solution_unknown_level",
                at,
                &level_text,
                format!(
                    "role `{role}`, privilege `{name}`: unknown level (Basic Local Deep Global)"
                ),
            ));
        };
        let meaning = parse_privilege_name(&name).map_err(|e| {
            let hint = match e {
                PrivilegeNameError::UnknownMisc {
                    suggestion: Some(s),
                } => format!(": not a table privilege nor a known miscellaneous privilege; did you mean `{s}`?"),
                PrivilegeNameError::UnknownMisc { suggestion: None } => {
                    ": not a table privilege nor a known miscellaneous privilege".to_owned()
                }
                PrivilegeNameError::NoPattern => {
                    ": fits no pattern (prv + Create|Read|Write|Delete|Append|AppendTo|Assign|Share + table, or a miscellaneous privilege)".to_owned()
                }
            };
            self.err(
                "solution_unknown_privilege",
                at,
                &name,
                format!("role `{role}`: unknown privilege{hint}"),
            )
        })?;
        let Some((current, _)) = self.current.as_mut() else {
            return Ok(());
        };
        if current.privileges.len() >= MAX_PRIVILEGES_PER_ROLE {
            let role = current.name.clone();
            return Err(self.err(
                "solution_too_many_privileges",
                at,
                &role,
                format!("role `{role}` lists more than {MAX_PRIVILEGES_PER_ROLE} privileges"),
            ));
        }
        current.privileges.push(RolePrivilegeEntry {
            name,
            meaning,
            level,
            line: at.0,
        });
        Ok(())
    }

    fn close(&mut self) {
        let depth = self.stack.len();
        if let Some((_, rd)) = &self.current
            && *rd == depth
            && let Some((role, _)) = self.current.take()
        {
            self.roles.push(role);
        }
        self.stack.pop();
    }
}
