//! SQL `LIKE` matching: `%` matches any run of characters, `_` exactly one.
//!
//! Literal patterns are analysed once: the usual shapes (`'abc'`, `'abc%'`, `'%abc'`, `'%abc%'`) become
//! plain string tests, anything else a token list for the backtracking matcher. Patterns that come
//! from a column are matched directly from their text, without compiling or allocating.
use memchr::memmem::Finder;

/// One pattern element. Literal text is kept as UTF-8 bytes: comparing bytes from character
/// boundaries matches exactly the same strings as comparing characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Byte(u8),
    One,
    Many,
}

/// Random access to pattern tokens, so one matcher serves compiled and raw patterns.
trait Pattern {
    fn len(&self) -> usize;
    fn at(&self, i: usize) -> Tok;
}

impl Pattern for [Tok] {
    fn len(&self) -> usize {
        <[Tok]>::len(self)
    }
    fn at(&self, i: usize) -> Tok {
        self[i]
    }
}

/// A pattern as written, without an escape character.
struct Raw<'a>(&'a [u8]);

impl Pattern for Raw<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn at(&self, i: usize) -> Tok {
        match self.0[i] {
            b'%' => Tok::Many,
            b'_' => Tok::One,
            b => Tok::Byte(b),
        }
    }
}

/// Length of the UTF-8 sequence that starts with `lead`.
#[inline]
fn char_len(lead: u8) -> usize {
    match lead {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Wildcard matching with a single backtrack point (the last `%`), linear for typical patterns.
fn matches<P: Pattern + ?Sized>(text: &[u8], pat: &P) -> bool {
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut retry: Option<(usize, usize)> = None;
    loop {
        if pi < pat.len() {
            match pat.at(pi) {
                Tok::Many => {
                    pi += 1;
                    retry = Some((pi, ti));
                    continue;
                }
                Tok::One if ti < text.len() => {
                    ti = (ti + char_len(text[ti])).min(text.len());
                    pi += 1;
                    continue;
                }
                Tok::Byte(b) if text.get(ti) == Some(&b) => {
                    ti += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        } else if ti >= text.len() {
            return true;
        }
        match retry {
            Some((rp, rt)) if rt < text.len() => {
                let next = (rt + char_len(text[rt])).min(text.len());
                retry = Some((rp, next));
                pi = rp;
                ti = next;
            }
            _ => return false,
        }
    }
}

/// `text LIKE pattern` for a pattern known only at run time (no escape character).
pub(crate) fn like_dynamic(text: &str, pattern: &str) -> bool {
    matches(text.as_bytes(), &Raw(pattern.as_bytes()))
}

/// A compiled literal pattern.
#[derive(Clone, Debug)]
pub(crate) enum LikePattern {
    /// No wildcards.
    Exact(Box<str>),
    /// `abc%`.
    Prefix(Box<str>),
    /// `%abc`.
    Suffix(Box<str>),
    /// `%abc%`.
    Contains(Box<Finder<'static>>),
    /// `%`: any non-null string.
    Any,
    /// Everything else.
    General(Box<[Tok]>),
}

impl LikePattern {
    /// Compiles a pattern; `escape` makes the following `%`, `_` or escape character literal.
    pub(crate) fn compile(pattern: &str, escape: Option<char>) -> Result<LikePattern, String> {
        let toks = tokenize(pattern, escape)?;
        Ok(simple_shape(&toks).unwrap_or_else(|| LikePattern::General(toks.into())))
    }

    /// Whether `text` matches.
    #[inline]
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            LikePattern::Exact(p) => text == &**p,
            LikePattern::Prefix(p) => text.starts_with(&**p),
            LikePattern::Suffix(p) => text.ends_with(&**p),
            LikePattern::Contains(f) => f.find(text.as_bytes()).is_some(),
            LikePattern::Any => true,
            LikePattern::General(toks) => matches(text.as_bytes(), &**toks),
        }
    }
}

fn tokenize(pattern: &str, escape: Option<char>) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let tok_of = match c {
            _ if Some(c) == escape => match chars.next() {
                Some(lit) => lit,
                None => return Err(format!("the LIKE pattern `{pattern}` ends with its escape character")),
            },
            '%' if toks.last() == Some(&Tok::Many) => continue,
            '%' => {
                toks.push(Tok::Many);
                continue;
            }
            '_' => {
                toks.push(Tok::One);
                continue;
            }
            other => other,
        };
        toks.extend(tok_of.encode_utf8(&mut buf).bytes().map(Tok::Byte));
    }
    Ok(toks)
}

/// Recognises patterns that are one literal with `%` only at the ends.
fn simple_shape(toks: &[Tok]) -> Option<LikePattern> {
    if toks.contains(&Tok::One) {
        return None;
    }
    let lead = toks.first() == Some(&Tok::Many);
    let trail = toks.len() > usize::from(lead) && toks.last() == Some(&Tok::Many);
    let inner = &toks[usize::from(lead)..toks.len() - usize::from(trail)];
    let bytes: Vec<u8> = inner
        .iter()
        .map(|t| match t {
            Tok::Byte(b) => Some(*b),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let lit = String::from_utf8(bytes).ok()?;
    Some(match (lead, trail) {
        (true, _) if lit.is_empty() => LikePattern::Any,
        (false, false) => LikePattern::Exact(lit.into()),
        (false, true) => LikePattern::Prefix(lit.into()),
        (true, false) => LikePattern::Suffix(lit.into()),
        (true, true) => LikePattern::Contains(Box::new(Finder::new(lit.as_bytes()).into_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str, pattern: &str) -> bool {
        let compiled = LikePattern::compile(pattern, None).map(|p| p.matches(text));
        assert_eq!(compiled, Ok(like_dynamic(text, pattern)), "{text:?} LIKE {pattern:?}");
        like_dynamic(text, pattern)
    }

    #[test]
    fn wildcards() {
        assert!(both("apple", "apple"));
        assert!(!both("apple", "appl"));
        assert!(both("apple", "app%"));
        assert!(both("apple", "%ple"));
        assert!(both("apple", "%pp%"));
        assert!(both("apple", "%"));
        assert!(both("", "%"));
        assert!(!both("", "_"));
        assert!(both("apple", "a_p_e"));
        assert!(both("apple", "a%e"));
        assert!(both("abcbcd", "a%bcd"));
        assert!(!both("abcbce", "a%bcd"));
        assert!(both("mississippi", "%iss%ppi"));
        assert!(both("héllo", "h_llo"));
        assert!(both("日本語", "_本_"));
        assert!(!both("日本語", "__"));
        assert!(both("a%b", "a%b"));
    }

    #[test]
    fn escapes() {
        let p = LikePattern::compile("100!%", Some('!')).unwrap();
        assert!(p.matches("100%"));
        assert!(!p.matches("1000"));
        let p = LikePattern::compile("a!_%", Some('!')).unwrap();
        assert!(p.matches("a_b"));
        assert!(!p.matches("ab"));
        assert!(LikePattern::compile("x!", Some('!')).is_err());
    }
}
