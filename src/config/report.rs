//! Rendering diagnostics rustc-style: the message, the file position, the source line with a caret,
//! the hint, and a summary line.
use super::overrides::override_index;
use eddy_api::config::Span;
use eddy_api::diagnostic::{Diagnostic, Diagnostics};
use std::fmt::{self, Write as _};
use std::sync::Arc;

/// The problems found in one job file, ready to print.
#[derive(Clone, Debug)]
pub struct Report {
    /// The file name as the user gave it.
    pub file: Arc<str>,
    /// The file's text (empty when it could not be read).
    pub source: Arc<str>,
    /// The problems, in any order (rendering sorts them by position).
    pub diagnostics: Diagnostics,
}

impl Report {
    /// A report over a file's text; the planner uses this for its graph-level problems too.
    pub fn new(file: impl Into<Arc<str>>, source: impl Into<Arc<str>>, diagnostics: impl Into<Diagnostics>) -> Self {
        Report { file: file.into(), source: source.into(), diagnostics: diagnostics.into() }
    }

    fn sorted(&self) -> Vec<&Diagnostic> {
        let mut all: Vec<&Diagnostic> = self.diagnostics.0.iter().collect();
        // Unlocated problems first, then command-line ones, then by position in the file.
        all.sort_by_key(|d| match d.span {
            None => (0, 0, 0),
            Some(s) if s.line == 0 => (1, 0, s.col),
            Some(s) => (2, s.line, s.col),
        });
        all
    }

    fn line(&self, number: u32) -> Option<&str> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        self.source.split('\n').nth(index).map(|l| l.strip_suffix('\r').unwrap_or(l))
    }

    fn render(&self, d: &Diagnostic, out: &mut String) {
        let _ = writeln!(out, "error: {}", d.message);
        let width = match d.span {
            Some(span) if span.line > 0 => self.render_location(span, out),
            Some(span) => {
                if let Some(i) = override_index(span) {
                    let _ = writeln!(out, " --> command line (--set #{})", i + 1);
                }
                1
            }
            None => 1,
        };
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "{:width$} = hint: {hint}", "");
        }
    }

    /// Writes the `-->` line and the source snippet; returns the gutter width.
    fn render_location(&self, span: Span, out: &mut String) -> usize {
        let number = span.line.to_string();
        let width = number.len();
        let _ = writeln!(out, "{:width$}--> {}:{}:{}", "", self.file, span.line, span.col);
        if let Some(text) = self.line(span.line) {
            // Tabs stay tabs under the caret so it lines up however the terminal expands them.
            let before = span.col.saturating_sub(1) as usize;
            let mut pad: String = text.chars().take(before).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let short = before.saturating_sub(pad.chars().count());
            pad.extend(std::iter::repeat_n(' ', short));
            let _ = writeln!(out, "{:width$} |", "");
            let _ = writeln!(out, "{number} | {text}");
            let _ = writeln!(out, "{:width$} | {pad}^", "");
        }
        width
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for d in self.sorted() {
            self.render(d, &mut out);
            out.push('\n');
        }
        let n = self.diagnostics.0.len();
        let _ = write!(out, "error: {n} {} in {}", if n == 1 { "problem" } else { "problems" }, self.file);
        f.write_str(&out)
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str =
        "name: q1\noperators:\n  euros: { type: map, inputs: [bids], config: { set: { price: \"pricee * 2\" } } }\n";

    #[test]
    fn renders_rustc_style_sorted_with_summary() {
        let diags = Diagnostics(vec![
            Diagnostic::at(Span::new(3, 64), "unknown field `pricee` in expression `pricee * 2`")
                .with_hint("did you mean `price`?"),
            Diagnostic::at(Span::new(1, 7), "first"),
        ]);
        let report = Report::new("jobs/q1.yaml", SOURCE, diags);
        let expected = "\
error: first
 --> jobs/q1.yaml:1:7
  |
1 | name: q1
  |       ^

error: unknown field `pricee` in expression `pricee * 2`
 --> jobs/q1.yaml:3:64
  |
3 |   euros: { type: map, inputs: [bids], config: { set: { price: \"pricee * 2\" } } }
  |                                                                ^
  = hint: did you mean `price`?

error: 2 problems in jobs/q1.yaml";
        assert_eq!(report.to_string(), expected);
    }

    #[test]
    fn wide_gutters_tabs_and_unlocated_problems() {
        let source = format!("{}\tkey: x\n", "\n".repeat(11));
        let diags = Diagnostics(vec![
            Diagnostic::at(Span::new(12, 7), "bad value"),
            Diagnostic::new("cannot do it").with_hint("try again"),
        ]);
        let expected = "\
error: cannot do it
  = hint: try again

error: bad value
  --> f.yaml:12:7
   |
12 | \tkey: x
   | \t     ^

error: 2 problems in f.yaml";
        assert_eq!(Report::new("f.yaml", source, diags).to_string(), expected);
    }

    #[test]
    fn one_problem_and_positions_outside_the_text() {
        let report = Report::new("a.yaml", "x: 1\n", Diagnostic::at(Span::new(9, 1), "far away"));
        assert_eq!(report.to_string(), "error: far away\n --> a.yaml:9:1\n\nerror: 1 problem in a.yaml");
        let report = Report::new("a.yaml", "x: 1\n", Diagnostic::at(Span::new(0, 2), "from the command line"));
        assert_eq!(
            report.to_string(),
            "error: from the command line\n --> command line (--set #2)\n\nerror: 1 problem in a.yaml"
        );
    }
}
