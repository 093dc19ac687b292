//! Markdown tables and the number formats of the report.

use std::fmt::Write as _;

use crate::stats::Spread;

/// A Markdown table built row by row.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    left: bool,
}

impl Table {
    /// A table with these column headers (the first column is left-aligned, the rest right).
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            left: false,
        }
    }

    /// Left-aligns every column (for text tables).
    pub(crate) fn left_aligned(mut self) -> Self {
        self.left = true;
        self
    }

    /// Appends a row (missing cells are left empty).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// True when no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The Markdown text, ending with a blank line.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let align: Vec<&str> = (0..self.header.len())
            .map(|i| if i == 0 || self.left { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", align.join("|"));
        for row in &self.rows {
            let cells: Vec<&str> = (0..self.header.len())
                .map(|i| row.get(i).map_or("", String::as_str))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
        out
    }
}

/// A number with precision that suits its size (µs, KiB, ratios).
pub(crate) fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A count with thousands separators.
pub(crate) fn count(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `median [q1 – q3]`, or `–` when there is no value.
pub(crate) fn spread(s: Option<Spread>, fmt: fn(f64) -> String) -> String {
    match s {
        None => "–".to_owned(),
        Some(s) if s.n < 2 => fmt(s.median),
        Some(s) => format!("{} [{} – {}]", fmt(s.median), fmt(s.q1), fmt(s.q3)),
    }
}

/// Just the median of a spread, or `–`.
pub(crate) fn median(s: Option<Spread>, fmt: fn(f64) -> String) -> String {
    s.map_or_else(|| "–".to_owned(), |s| fmt(s.median))
}

/// A per-event figure to 3 decimals (heap allocations).
pub(crate) fn three_decimals(x: f64) -> String {
    format!("{x:.3}")
}

/// A fraction as a percentage.
pub(crate) fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_tables_format() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(-1.2345), "-1.23");
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(-999.0), "-999");
        assert_eq!(percent(0.955), "95.5 %");
        let s = Spread::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(spread(s, num), "3.00 [2.00 – 4.00]");
        assert_eq!(spread(None, num), "–");
        let mut t = Table::new(&["a", "b"]);
        assert!(t.is_empty());
        t.row(vec!["x".into()]);
        assert_eq!(t.render(), "| a | b |\n|---|---:|\n| x |  |\n\n");
    }
}
