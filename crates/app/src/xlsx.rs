//! A small XLSX (Office Open XML SpreadsheetML) writer for the access review (D139): sheets of
//! text and whole numbers with a few fixed styles, a frozen header row, column widths and an
//! autofilter — the parts a review needs, written straight into a deflated zip. Strings are
//! written inline (`t="inlineStr"`), so no shared-string table is built; text that XML 1.0
//! cannot hold (control characters) is escaped as OOXML's `_xHHHH_`, and a literal `_x` is
//! escaped so that it reads back as written.
//!
//! Limits (Excel's, enforced with errors): 1,048,576 rows and 16,384 columns a sheet, 32,767
//! characters a cell, sheet names of 1–31 characters without `[]:*?/\`, unique.

use std::fmt::Write as _;
use std::io::Write as _;

/// The most rows a sheet holds.
pub const MAX_ROWS: usize = 1_048_576;
/// The most columns a sheet holds.
pub const MAX_COLUMNS: usize = 16_384;
/// The most characters (UTF-16 units, as Excel counts them) a cell holds.
pub const MAX_CELL_CHARS: usize = 32_767;

/// A cell's style: an index into [`Book::new`]'s styles (0: none).
pub type Style = u16;

/// A cell's value.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    /// Nothing (the cell is left out).
    Empty,
    /// Text.
    Text(std::borrow::Cow<'a, str>),
    /// A whole number.
    Number(i64),
}

/// A style: bold or not, a font colour and a fill, as `RRGGBB`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StyleSpec {
    /// Bold text.
    pub bold: bool,
    /// The font's colour.
    pub font: Option<u32>,
    /// A solid fill.
    pub fill: Option<u32>,
}

/// Why a workbook could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XlsxError {
    /// A limit of the format, with what passed it.
    Limit(String),
    /// The zip could not be written (memory only: not expected).
    Zip(String),
}

impl std::fmt::Display for XlsxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XlsxError::Limit(m) | XlsxError::Zip(m) => f.write_str(m),
        }
    }
}

/// A workbook being written: sheets are added one after the other, each written to the zip as
/// it is added. A book whose [`Book::sheet`] failed is not to be finished: drop it.
pub struct Book {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
    options: zip::write::SimpleFileOptions,
    styles: Vec<StyleSpec>,
    /// Each sheet's name and its autofilter's range (`$A$1:$C$10`).
    sheets: Vec<(String, String)>,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Book({} sheets)", self.sheets.len())
    }
}

/// Flush the sheet's text to the zip past this many bytes.
const CHUNK: usize = 1 << 16;

impl Book {
    /// A workbook with these styles (style `i + 1` is `styles[i]`), deflated at `level`.
    #[must_use]
    pub fn new(styles: &[StyleSpec], level: u8) -> Book {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(i64::from(level)));
        Book {
            zip: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())),
            options,
            styles: styles.to_vec(),
            sheets: Vec::new(),
        }
    }

    /// Adds a sheet: a header row (style `header`) frozen and filtered, then `rows`, each cell
    /// with its style; columns `widths` characters wide.
    ///
    /// # Errors
    ///
    /// [`XlsxError::Limit`] for a name, a size or a cell past the format's limits.
    pub fn sheet<'r, R>(
        &mut self,
        name: &str,
        columns: &[&'r str],
        header: Style,
        widths: &[f64],
        rows: R,
    ) -> Result<(), XlsxError>
    where
        R: ExactSizeIterator<Item = Vec<(Value<'r>, Style)>>,
    {
        check_name(name, &self.sheets)?;
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(XlsxError::Limit(format!(
                "sheet `{name}`: {} columns (1 to {MAX_COLUMNS})",
                columns.len()
            )));
        }
        if rows.len() + 1 > MAX_ROWS {
            return Err(XlsxError::Limit(format!(
                "sheet `{name}`: {} rows and a header, more than a sheet holds ({MAX_ROWS})",
                rows.len()
            )));
        }
        if usize::from(header) > self.styles.len() {
            return Err(XlsxError::Limit(format!(
                "sheet `{name}`: no style {header}"
            )));
        }
        let names: Vec<String> = (0..columns.len()).map(column_name).collect();
        let (last_column, last_row) = (column_name(columns.len() - 1), rows.len() + 1);
        let range = format!("A1:{last_column}{last_row}");
        let n = self.sheets.len() + 1;
        self.zip
            .start_file(format!("xl/worksheets/sheet{n}.xml"), self.options)
            .map_err(zip_error)?;
        let mut out = String::with_capacity(CHUNK + 4096);
        out.push_str(XML);
        out.push_str(
            "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
             xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">",
        );
        let _ = write!(out, "<dimension ref=\"{range}\"/>");
        let selected = if n == 1 { " tabSelected=\"1\"" } else { "" };
        let _ = write!(
            out,
            "<sheetViews><sheetView{selected} workbookViewId=\"0\"><pane ySplit=\"1\" \
             topLeftCell=\"A2\" activePane=\"bottomLeft\" state=\"frozen\"/><selection \
             pane=\"bottomLeft\"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight=\"15\"/>"
        );
        // An empty `<cols>` is not valid: only when there are widths.
        let widths = &widths[..widths.len().min(columns.len())];
        if !widths.is_empty() {
            out.push_str("<cols>");
            for (c, w) in widths.iter().enumerate() {
                let _ = write!(
                    out,
                    "<col min=\"{0}\" max=\"{0}\" width=\"{1}\" customWidth=\"1\"/>",
                    c + 1,
                    w.clamp(1.0, 255.0)
                );
            }
            out.push_str("</cols>");
        }
        out.push_str("<sheetData>");
        let head = columns
            .iter()
            .map(|c| (Value::Text((*c).into()), header))
            .collect();
        for (r, row) in std::iter::once(head).chain(rows).enumerate() {
            if row.len() > columns.len() {
                return Err(XlsxError::Limit(format!(
                    "sheet `{name}`, row {}: {} cells for {} columns",
                    r + 1,
                    row.len(),
                    columns.len()
                )));
            }
            let _ = write!(out, "<row r=\"{}\">", r + 1);
            for (c, (value, style)) in row.into_iter().enumerate() {
                if usize::from(style) > self.styles.len() {
                    return Err(XlsxError::Limit(format!(
                        "sheet `{name}`: no style {style}"
                    )));
                }
                let at = (&names[c], r + 1);
                match value {
                    Value::Empty => {
                        if style != 0 {
                            cell_start(&mut out, at, style);
                            out.push_str("/>");
                        }
                    }
                    Value::Number(v) => {
                        cell_start(&mut out, at, style);
                        let _ = write!(out, "><v>{v}</v></c>");
                    }
                    Value::Text(t) => {
                        let t = &*t;
                        // Excel counts UTF-16 units; a text of fewer bytes cannot have more.
                        if t.len() > MAX_CELL_CHARS && t.encode_utf16().count() > MAX_CELL_CHARS {
                            return Err(XlsxError::Limit(format!(
                                "sheet `{name}`, cell {}{}: more than {MAX_CELL_CHARS} characters",
                                at.0, at.1
                            )));
                        }
                        let space = if t.starts_with(char::is_whitespace)
                            || t.ends_with(char::is_whitespace)
                        {
                            " xml:space=\"preserve\""
                        } else {
                            ""
                        };
                        cell_start(&mut out, at, style);
                        let _ = write!(out, " t=\"inlineStr\"><is><t{space}>");
                        escape_text(&mut out, t);
                        out.push_str("</t></is></c>");
                    }
                }
            }
            out.push_str("</row>");
            if out.len() >= CHUNK {
                self.zip.write_all(out.as_bytes()).map_err(zip_error)?;
                out.clear();
            }
        }
        let _ = write!(
            out,
            "</sheetData><autoFilter ref=\"{range}\"/><pageMargins left=\"0.7\" right=\"0.7\" \
             top=\"0.75\" bottom=\"0.75\" header=\"0.3\" footer=\"0.3\"/></worksheet>"
        );
        self.zip.write_all(out.as_bytes()).map_err(zip_error)?;
        self.sheets
            .push((name.to_owned(), format!("$A$1:${last_column}${last_row}")));
        Ok(())
    }

    /// The workbook's bytes: the package parts around the sheets.
    ///
    /// # Errors
    ///
    /// [`XlsxError::Limit`] without a sheet; [`XlsxError::Zip`] when the zip fails.
    pub fn finish(mut self) -> Result<Vec<u8>, XlsxError> {
        if self.sheets.is_empty() {
            return Err(XlsxError::Limit("a workbook needs a sheet".to_owned()));
        }
        let n = self.sheets.len();
        let mut types = String::from(XML);
        types.push_str(
            "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
             <Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
        );
        for i in 1..=n {
            let _ = write!(
                types,
                "<Override PartName=\"/xl/worksheets/sheet{i}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
            );
        }
        types.push_str("</Types>");
        let rels = format!(
            "{XML}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>\
             </Relationships>"
        );
        let mut workbook = String::from(XML);
        workbook.push_str(
            "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
             xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
             <bookViews><workbookView activeTab=\"0\"/></bookViews><sheets>",
        );
        for (i, (name, _)) in self.sheets.iter().enumerate() {
            workbook.push_str("<sheet name=\"");
            escape_attribute(&mut workbook, name);
            let _ = write!(workbook, "\" sheetId=\"{0}\" r:id=\"rId{0}\"/>", i + 1);
        }
        workbook.push_str("</sheets><definedNames>");
        for (i, (name, range)) in self.sheets.iter().enumerate() {
            let _ = write!(
                workbook,
                "<definedName name=\"_xlnm._FilterDatabase\" localSheetId=\"{i}\" hidden=\"1\">'"
            );
            // A quote in a sheet name is doubled inside the quoted reference.
            escape_text(&mut workbook, &name.replace('\'', "''"));
            let _ = write!(workbook, "'!{range}</definedName>");
        }
        workbook.push_str("</definedNames></workbook>");
        let mut workbook_rels = format!(
            "{XML}<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        );
        for i in 1..=n {
            let _ = write!(
                workbook_rels,
                "<Relationship Id=\"rId{i}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet{i}.xml\"/>"
            );
        }
        let _ = write!(
            workbook_rels,
            "<Relationship Id=\"rId{}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/></Relationships>",
            n + 1
        );
        let styles = styles_part(&self.styles);
        for (path, text) in [
            ("[Content_Types].xml", &types),
            ("_rels/.rels", &rels),
            ("xl/workbook.xml", &workbook),
            ("xl/_rels/workbook.xml.rels", &workbook_rels),
            ("xl/styles.xml", &styles),
        ] {
            self.zip.start_file(path, self.options).map_err(zip_error)?;
            self.zip.write_all(text.as_bytes()).map_err(zip_error)?;
        }
        Ok(self.zip.finish().map_err(zip_error)?.into_inner())
    }
}

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// `<c r="B7"` and the style when it has one.
fn cell_start(out: &mut String, (column, row): (&String, usize), style: Style) {
    let _ = write!(out, "<c r=\"{column}{row}\"");
    if style != 0 {
        let _ = write!(out, " s=\"{style}\"");
    }
}

fn zip_error(e: impl std::fmt::Display) -> XlsxError {
    XlsxError::Zip(format!("workbook zip: {e}"))
}

fn check_name(name: &str, sheets: &[(String, String)]) -> Result<(), XlsxError> {
    let chars = name.chars().count();
    if chars == 0
        || chars > 31
        || name.contains(['[', ']', ':', '*', '?', '/', '\\'])
        || name.starts_with('\'')
        || name.ends_with('\'')
    {
        return Err(XlsxError::Limit(format!(
            "sheet name `{name}`: 1 to 31 characters, none of []:*?/\\, not starting or ending with '"
        )));
    }
    if sheets
        .iter()
        .any(|(other, _)| other.to_lowercase() == name.to_lowercase())
    {
        return Err(XlsxError::Limit(format!("sheet name `{name}` twice")));
    }
    Ok(())
}

/// The styles part: style 0 is Calibri 11 with nothing else; style `i + 1` is `specs[i]`.
fn styles_part(specs: &[StyleSpec]) -> String {
    let font = |bold: bool, colour: Option<u32>| {
        let b = if bold { "<b/>" } else { "" };
        let c = colour.map_or(String::new(), |rgb| format!("<color rgb=\"FF{rgb:06X}\"/>"));
        format!("<font>{b}<sz val=\"11\"/>{c}<name val=\"Calibri\"/><family val=\"2\"/></font>")
    };
    let mut fonts = vec![font(false, None)];
    let mut fills = vec![
        "<fill><patternFill patternType=\"none\"/></fill>".to_owned(),
        "<fill><patternFill patternType=\"gray125\"/></fill>".to_owned(),
    ];
    let mut xfs =
        vec!["<xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/>".to_owned()];
    for spec in specs {
        let mut font_id = 0;
        if spec.bold || spec.font.is_some() {
            fonts.push(font(spec.bold, spec.font));
            font_id = fonts.len() - 1;
        }
        let mut fill_id = 0;
        if let Some(rgb) = spec.fill {
            fills.push(format!(
                "<fill><patternFill patternType=\"solid\"><fgColor rgb=\"FF{rgb:06X}\"/><bgColor indexed=\"64\"/></patternFill></fill>"
            ));
            fill_id = fills.len() - 1;
        }
        let apply_font = if font_id == 0 { "" } else { " applyFont=\"1\"" };
        let apply_fill = if fill_id == 0 { "" } else { " applyFill=\"1\"" };
        xfs.push(format!(
            "<xf numFmtId=\"0\" fontId=\"{font_id}\" fillId=\"{fill_id}\" borderId=\"0\" xfId=\"0\"{apply_font}{apply_fill}/>"
        ));
    }
    format!(
        "{XML}<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">\
         <fonts count=\"{}\">{}</fonts><fills count=\"{}\">{}</fills>\
         <borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>\
         <cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs>\
         <cellXfs count=\"{}\">{}</cellXfs>\
         <cellStyles count=\"1\"><cellStyle name=\"Normal\" xfId=\"0\" builtinId=\"0\"/></cellStyles>\
         <dxfs count=\"0\"/><tableStyles count=\"0\" defaultTableStyle=\"TableStyleMedium9\" defaultPivotStyle=\"PivotStyleLight16\"/>\
         </styleSheet>",
        fonts.len(),
        fonts.concat(),
        fills.len(),
        fills.concat(),
        xfs.len(),
        xfs.concat()
    )
}

/// A column's letters: 0 → `A`, 25 → `Z`, 26 → `AA`.
#[must_use]
pub fn column_name(mut c: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// Text as XML character data: `&`, `<` and `>` escaped; characters XML 1.0 cannot hold as
/// `_xHHHH_`; and the `_` of a literal `_xHHHH_` as `_x005F_`, so that it reads back as written.
fn escape_text(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    for (i, ch) in text.char_indices() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "_x{:04X}_", c as u32);
            }
            '_' if looks_escaped(&bytes[i..]) => out.push_str("_x005F_"),
            c => out.push(c),
        }
    }
}

/// Whether these bytes start with `_xHHHH_` (four hexadecimal digits).
fn looks_escaped(b: &[u8]) -> bool {
    b.len() >= 7
        && b[0] == b'_'
        && b[1] == b'x'
        && b[2..6].iter().all(u8::is_ascii_hexdigit)
        && b[6] == b'_'
}

fn escape_attribute(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("&quot;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_a_spreadsheet_names_them() {
        let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702, 16_383]
            .into_iter()
            .map(column_name)
            .collect();
        assert_eq!(
            names,
            ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA", "XFD"]
        );
    }

    #[test]
    fn text_is_escaped_for_xml_and_for_ooxml() {
        let mut out = String::new();
        escape_text(&mut out, "a<b>&c\u{1}d_x0041_e_xZZ_");
        assert_eq!(out, "a&lt;b&gt;&amp;c_x0001_d_x005F_x0041_e_xZZ_");
    }

    #[test]
    fn limits_are_errors() {
        let mut book = Book::new(&[], 1);
        let none = std::iter::empty::<Vec<(Value<'_>, Style)>>();
        assert!(matches!(
            book.sheet("a/b", &["x"], 0, &[], none.clone()),
            Err(XlsxError::Limit(_))
        ));
        assert!(matches!(
            book.sheet("x", &["x"], 3, &[], none.clone()),
            Err(XlsxError::Limit(_))
        ));
        book.sheet("Sheet", &["x"], 0, &[], none.clone()).unwrap();
        assert!(matches!(
            book.sheet("sheet", &["x"], 0, &[], none),
            Err(XlsxError::Limit(_))
        ));
        let long = "x".repeat(MAX_CELL_CHARS + 1);
        let rows = vec![vec![(Value::Text(long.into()), 0)]];
        assert!(matches!(
            book.sheet("Long", &["x"], 0, &[], rows.into_iter()),
            Err(XlsxError::Limit(_))
        ));
        assert!(matches!(
            Book::new(&[], 1).finish(),
            Err(XlsxError::Limit(_))
        ));
    }
}
