//! `-o table|json|yaml`: tables that fit the terminal, or the API's own
//! documents as JSON or YAML.
//!
//! Everything goes through [`write`], which reports a closed pipe (`riposte
//! audit | head`) as an error the caller ends on quietly, never a panic.

use std::io::Write;

use serde::Serialize;

use super::ClientError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// Narrowest a column is cut to before the table is let overflow.
const MIN_COLUMN: usize = 6;
const GAP: &str = "  ";
/// Narrowest the last column (free text) is cut to before the others are.
const LAST_COLUMN: usize = 24;

/// Writes `text` to stdout.
pub fn write(text: &str) -> Result<(), ClientError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(ClientError::Output)
}

/// The terminal's width: `COLUMNS` when set, else the terminal's own, else
/// none (piped: nothing is cut).
pub fn terminal_width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, w)| usize::from(w))
        .filter(|w| *w > 0)
}

/// `value` as JSON or YAML text.
pub fn document<T: Serialize + ?Sized>(format: Format, value: &T) -> Result<String, ClientError> {
    let text = match format {
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| e.to_string()),
        _ => serde_json::to_string_pretty(value)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| e.to_string()),
    };
    text.map_err(|e| ClientError::Output(std::io::Error::other(e)))
}

/// Prints `value` in `format`, with `table` making the table.
pub fn emit<T: Serialize + ?Sized>(
    format: Format,
    value: &T,
    table: impl FnOnce(&T) -> Table,
) -> Result<(), ClientError> {
    match format {
        Format::Table => write(&table(value).render(terminal_width())),
        other => write(&document(other, value)?),
    }
}

/// Rows under a header of upper-case column names.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `width` characters, the cut shown by `…`. Control characters
/// (a newline in a reason) become spaces so a row stays one line.
fn fit(s: &str, width: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if width_of(&clean) <= width {
        return clean;
    }
    let mut out: String = clean.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Column widths: each column's widest cell, the widest columns cut
    /// (not below [`MIN_COLUMN`]) until the row fits `max`.
    pub fn layout(&self, max: Option<usize>) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width_of(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width_of(cell));
            }
        }
        let Some(max) = max else {
            return widths;
        };
        let gaps = GAP.len() * widths.len().saturating_sub(1);
        // The last column is free text (a reason, a description): it gives
        // up its room first, down to a readable width; then one character
        // at a time comes off the widest column.
        let total = widths.iter().sum::<usize>() + gaps;
        if let Some(last) = widths.last_mut() {
            let over = total.saturating_sub(max);
            *last = (*last).saturating_sub(over).max(LAST_COLUMN.min(*last));
        }
        while widths.iter().sum::<usize>() + gaps > max {
            let Some(widest) = widths.iter_mut().max_by_key(|w| **w) else {
                break;
            };
            if *widest <= MIN_COLUMN {
                break;
            }
            *widest -= 1;
        }
        widths
    }

    fn line(cells: impl Iterator<Item = String>, widths: &[usize]) -> String {
        let mut line = String::new();
        for (i, (cell, w)) in cells.zip(widths).enumerate() {
            let cell = fit(&cell, *w);
            if i + 1 < widths.len() {
                line.push_str(&format!("{cell:<w$}{GAP}"));
            } else {
                line.push_str(&cell);
            }
        }
        line.truncate(line.trim_end().len());
        line.push('\n');
        line
    }

    /// The rows laid out in `widths`, with the header when `header`.
    pub fn render_with(&self, widths: &[usize], header: bool) -> String {
        let mut out = String::new();
        if header {
            out.push_str(&Self::line(
                self.headers.iter().map(|h| (*h).to_owned()),
                widths,
            ));
        }
        for row in &self.rows {
            out.push_str(&Self::line(row.iter().cloned(), widths));
        }
        out
    }

    pub fn render(&self, max: Option<usize>) -> String {
        self.render_with(&self.layout(max), true)
    }
}

/// A time as operators read it: UTC to the second.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional cell.
pub fn opt(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(&["NAME", "STATE", "REASON"]);
        t.row(vec![
            "shop/checkout-7d9f8b6c5-x2k4q".into(),
            "quarantined".into(),
            "C2 beacon to 203.0.113.9 seen 14 times within five minutes".into(),
        ]);
        t.row(vec!["a/b".into(), "ok".into(), "-".into()]);
        t
    }

    #[test]
    fn a_table_fits_the_terminal_by_cutting_the_longest_column() {
        let out = table().render(Some(70));
        for line in out.lines() {
            assert!(line.chars().count() <= 70, "{line:?}");
        }
        // The free text gives way; the pod's name stays whole.
        assert!(out.contains("shop/checkout-7d9f8b6c5-x2k4q"), "{out}");
        assert!(out.contains("quarantined"), "{out}");
        assert!(out.contains('…'), "{out}");
        assert!(out.starts_with("NAME"));
    }

    #[test]
    fn piped_tables_are_not_cut_and_rows_stay_one_line() {
        let mut t = table();
        t.row(vec!["x/y".into(), "ok".into(), "two\nlines".into()]);
        let out = t.render(None);
        assert!(!out.contains('…'));
        assert_eq!(out.lines().count(), 4, "{out}");
    }

    #[test]
    fn a_very_narrow_terminal_keeps_every_column_readable() {
        let widths = table().layout(Some(10));
        assert!(widths.iter().all(|w| *w >= 5), "{widths:?}");
    }
}
