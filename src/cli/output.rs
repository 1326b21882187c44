//! Output for people (aligned columns) and for programs (JSON, CSV).

/// Columns padded to their widest cell, two spaces apart, no trailing spaces.
pub(super) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cell for an optional value: the value, or `-`.
pub(super) fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A short one-line preview of a text for a table cell.
pub(super) fn preview(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut s: String = flat.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// Writes `rows` as CSV with a header row to standard output.
pub(super) fn write_csv(headers: &[&str], rows: &[Vec<String>]) -> Result<(), super::Failure> {
    let fail = |e: csv::Error| super::Failure::Other(format!("cannot write CSV: {e}"));
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record(headers).map_err(fail)?;
    for r in rows {
        w.write_record(r).map_err(fail)?;
    }
    w.flush()
        .map_err(|e| super::Failure::Other(format!("cannot write CSV: {e}")))
}

/// Prints `value` as one line of JSON.
pub(super) fn print_json(value: &impl serde::Serialize) -> Result<(), super::Failure> {
    let text = serde_json::to_string(value).map_err(|e| super::Failure::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `yes` or `no`.
pub(super) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_characters() {
        let rows = vec![
            vec!["Jürgen".to_owned(), "1".to_owned(), "-".to_owned()],
            vec!["Al".to_owned(), "100".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "N", "X"], &rows),
            "NAME    N    X\nJürgen  1    -\nAl      100  x\n"
        );
        assert_eq!(preview("a\nb", 10), "a b");
        assert_eq!(preview("abcdef", 4), "abc…");
    }
}
