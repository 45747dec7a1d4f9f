//! Diagnostics: problems found while validating a job, each with a location and a hint.
use crate::config::Span;
use std::fmt;

/// One problem in a job definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the YAML, when known.
    pub span: Option<Span>,
    /// What is wrong and what was expected.
    pub message: String,
    /// A suggestion ("did you mean ...").
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at a location.
    pub fn at(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { span: Some(span), message: message.into(), hint: None }
    }

    /// A problem without a location.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic { span: None, message: message.into(), hint: None }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a "did you mean" hint when one of `candidates` is close to `word`.
    pub fn did_you_mean<'a>(self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(word, candidates) {
            Some(c) => self.with_hint(format!("did you mean `{c}`?")),
            None => self,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.span {
            write!(f, "{}:{}: ", s.line, s.col)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Several problems, reported together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// True when there are no problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when empty, otherwise the problems.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<I: IntoIterator<Item = Diagnostic>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

/// The closest candidate to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d > 0 && d <= 2.max(word.len().min(c.len()) / 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
