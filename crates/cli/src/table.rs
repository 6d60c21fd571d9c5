//! The CLI's tables: a header over rows of names, as plain aligned columns (comfy-table; no
//! colours, no borders, no terminal detection, so a pipe gets what a terminal shows).
//!
//! ```text
//! ROLE   RULE      ROLES
//! ------ --------- ----------
//! Sales  requires  Basic User
//! ```

use comfy_table::{CellAlignment, ContentArrangement, Table, TableComponent};

/// The table as lines, without trailing blanks: columns separated by two spaces, the header
/// underlined with dashes when `underline`.
fn lines(header: &[&str], rows: &[Vec<String>], underline: bool) -> Vec<String> {
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_style(TableComponent::VerticalLines, ' ')
        .set_header(header.iter().copied());
    if underline {
        table
            .set_style(TableComponent::HeaderLines, '-')
            .set_style(TableComponent::MiddleHeaderIntersections, ' ');
    }
    for row in rows {
        table.add_row(row.iter().map(String::as_str));
    }
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        // One space after every column but the last, then the separator: two in all.
        column.set_padding((0, u16::from(i < last)));
        column.set_cell_alignment(CellAlignment::Left);
    }
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect()
}

/// The table, its header underlined, without a final newline.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    lines(header, rows, true).join("\n")
}

/// Prints the table, its header underlined.
pub(crate) fn print(header: &[&str], rows: &[Vec<String>]) {
    println!("{}", render(header, rows));
}

/// The table set inside a section of text: every line indented by two spaces and ended by a
/// newline, the header not underlined.
pub(crate) fn render_indented(header: &[&str], rows: &[Vec<String>]) -> String {
    lines(header, rows, false)
        .iter()
        .map(|line| format!("  {line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn columns_are_aligned_two_spaces_apart_under_an_underlined_header() {
        let text = render(
            &["ROLE", "RULE", "ROLES"],
            &rows(&[
                &["Sales", "requires", "Basic User or Agent"],
                &["Omnichannel API access", "excludes", ""],
            ]),
        );
        assert_eq!(
            text,
            "ROLE                    RULE      ROLES\n\
             ----------------------- --------- -------------------\n\
             Sales                   requires  Basic User or Agent\n\
             Omnichannel API access  excludes"
        );
    }

    #[test]
    fn wide_cells_are_measured_as_shown() {
        let text = render(&["A", "B"], &rows(&[&["x ≥ y …", "z"]]));
        assert_eq!(text, "A        B\n-------- -\nx ≥ y …  z");
    }

    #[test]
    fn an_indented_table_has_no_rule_and_ends_each_line() {
        let text = render_indented(&["USER", "TABLE"], &rows(&[&["rep1", "account"]]));
        assert_eq!(text, "  USER  TABLE\n  rep1  account\n");
    }

    #[test]
    fn a_table_without_rows_is_its_header() {
        assert_eq!(render(&["USER", "RULE"], &[]), "USER  RULE\n----- ----");
    }
}
