//! Parsing expression text with sqlparser, and rewording its errors as diagnostics that point into the
//! job file.
use eddy_api::{Diagnostic, Span};
use sqlparser::ast;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// Maps a location inside the expression text (1-based line and column, line 0 = unknown) to the job
/// file, given where the expression's first character sits.
pub(crate) fn map_location(origin: Span, loc: Location) -> Span {
    if loc.line == 0 {
        return origin;
    }
    let line = u32::try_from(loc.line).unwrap_or(u32::MAX);
    let col = u32::try_from(loc.column).unwrap_or(u32::MAX);
    if line == 1 {
        Span::new(origin.line, origin.col.saturating_add(col.saturating_sub(1)))
    } else {
        Span::new(origin.line.saturating_add(line - 1), col)
    }
}

/// Parses one whole expression; trailing tokens are an error.
pub(crate) fn parse(text: &str, origin: Span) -> Result<ast::Expr, Diagnostic> {
    let dialect = GenericDialect {};
    let syntax = |at: Span, detail: String| Diagnostic::at(at, format!("syntax error in `{text}`: {detail}"));
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| syntax(map_location(origin, e.location), sentence(&e.message)))?;
    let significant: Vec<TokenWithSpan> =
        tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF)).cloned().collect();
    if significant.is_empty() {
        return Err(Diagnostic::at(origin, "the expression is empty"));
    }
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| {
        let (at, detail) = describe_error(origin, &significant, e);
        syntax(at, detail)
    })?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        let prev = significant.iter().take_while(|t| t.span.start < next.span.start).last();
        let detail = match prev {
            Some(p) => format!("unexpected `{}` after `{}`", next.token, p.token),
            None => format!("unexpected `{}`", next.token),
        };
        return Err(syntax(map_location(origin, next.span.start), detail));
    }
    Ok(expr)
}

/// Rewords a parser error ("Expected: an expression, found: EOF") and finds where it points.
fn describe_error(origin: Span, toks: &[TokenWithSpan], err: ParserError) -> (Span, String) {
    let raw = match err {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => return (origin, "the expression is nested too deeply".into()),
    };
    let (msg, loc) = split_location(&raw);
    // The offending token, or None at the end of the text (where sqlparser gives no location).
    let at = loc.and_then(|l| toks.iter().position(|t| t.span.start == l));
    let prev = match at {
        Some(i) => i.checked_sub(1).and_then(|j| toks.get(j)),
        None => toks.last(),
    };
    let span = match (loc, toks.last()) {
        (Some(l), _) => map_location(origin, l),
        (None, Some(last)) => map_location(origin, last.span.end),
        (None, None) => origin,
    };
    let detail = if let Some(rest) = msg.strip_prefix("Expected: ") {
        let (expected, found) = rest.split_once(", found: ").unwrap_or((rest, ""));
        let expected = describe_expected(expected);
        match (found, prev) {
            ("EOF" | "", Some(p)) => format!("expected {expected} after `{}`", p.token),
            ("EOF" | "", None) => format!("expected {expected}"),
            (f, Some(p)) => format!("expected {expected} after `{}`, found `{f}`", p.token),
            (f, None) => format!("expected {expected}, found `{f}`"),
        }
    } else if msg.starts_with("No infix parser") {
        match at.and_then(|i| toks.get(i)) {
            Some(t) => format!("unsupported operator `{}`", t.token),
            None => "unsupported operator".into(),
        }
    } else {
        sentence(msg)
    };
    (span, detail)
}

/// Splits sqlparser's " at Line: L, Column: C" suffix off a message.
fn split_location(msg: &str) -> (&str, Option<Location>) {
    let Some(idx) = msg.rfind(" at Line: ") else {
        return (msg, None);
    };
    let tail = &msg[idx + " at Line: ".len()..];
    let loc = tail.split_once(", Column: ").and_then(|(l, c)| Some(Location::new(l.parse().ok()?, c.parse().ok()?)));
    match loc {
        Some(loc) => (&msg[..idx], Some(loc)),
        None => (msg, None),
    }
}

/// "an expression" stays prose; a token such as `)` or `AS` is quoted.
fn describe_expected(expected: &str) -> String {
    match expected {
        "end of statement" => "the end of the expression".into(),
        e if e.contains(' ') => e.into(),
        e => format!("`{e}`"),
    }
}

/// sqlparser messages start with a capital letter; ours continue a sentence.
fn sentence(msg: &str) -> String {
    let mut chars = msg.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Diagnostic {
        match parse(text, Span::new(3, 10)) {
            Ok(e) => panic!("{text} parsed as {e:?}"),
            Err(d) => d,
        }
    }

    #[test]
    fn maps_locations() {
        let o = Span::new(3, 10);
        assert_eq!(map_location(o, Location::new(1, 1)), Span::new(3, 10));
        assert_eq!(map_location(o, Location::new(1, 5)), Span::new(3, 14));
        assert_eq!(map_location(o, Location::new(2, 4)), Span::new(4, 4));
        assert_eq!(map_location(o, Location::new(0, 0)), o);
    }

    #[test]
    fn syntax_errors_are_readable() {
        let d = err("price *");
        assert_eq!(d.message, "syntax error in `price *`: expected an expression after `*`");
        assert_eq!(d.span, Some(Span::new(3, 17)));

        let d = err("x = = 1");
        assert_eq!(d.message, "syntax error in `x = = 1`: expected an expression after `=`, found `=`");
        assert_eq!(d.span, Some(Span::new(3, 14)));

        let d = err("(a + 1");
        assert_eq!(d.message, "syntax error in `(a + 1`: expected `)` after `1`");

        let d = err("a b");
        assert_eq!(d.message, "syntax error in `a b`: unexpected `b` after `a`");
        assert_eq!(d.span, Some(Span::new(3, 12)));

        let d = err("'abc");
        assert_eq!(d.message, "syntax error in `'abc`: unterminated string literal");
        assert_eq!(d.span, Some(Span::new(3, 10)));

        let d = err("a @ b");
        assert_eq!(d.message, "syntax error in `a @ b`: unsupported operator `@`");
        assert_eq!(d.span, Some(Span::new(3, 12)));

        let d = err("a +\n  * b");
        assert_eq!(d.span, Some(Span::new(4, 3)));

        assert_eq!(err("   ").message, "the expression is empty");
    }
}
