//! Input field lookups with located diagnostics, shared by the operators of this crate: a wrong field
//! name or type in a config is reported at the value, with a "did you mean", like the built-ins do.
use eddy_api::{DataType, Diagnostic, Diagnostics, Schema, Span, Spanned};

/// A field name from the config, or `default` located at the node when the config leaves it out.
pub(crate) fn name_or(value: Option<Spanned<String>>, default: &str, node: Span) -> Spanned<String> {
    value.unwrap_or_else(|| Spanned::new(node, default.to_string()))
}

/// The position of field `name` in the input `input` (schema `schema`), if it has one of `types` (any
/// type when `types` is empty); otherwise a diagnostic at the name, pushed to `diags`.
pub(crate) fn find(
    schema: &Schema,
    input: &str,
    name: &Spanned<String>,
    what: &str,
    types: &[DataType],
    diags: &mut Diagnostics,
) -> Option<usize> {
    let Some(i) = schema.index_of(&name.value) else {
        let mut d = Diagnostic::at(name.span, format!("{what}: the input `{input}` has no field `{}`", name.value))
            .did_you_mean(&name.value, schema.names());
        if d.hint.is_none() {
            d = d.with_hint(format!("its fields: {}", schema.names().collect::<Vec<_>>().join(", ")));
        }
        diags.push(d);
        return None;
    };
    let ty = schema.fields()[i].data_type;
    if !types.is_empty() && !types.contains(&ty) {
        let want: Vec<&str> = types.iter().map(|t| t.name()).collect();
        diags.push(Diagnostic::at(
            name.span,
            format!("{what}: field `{}` is {ty}, expected {}", name.value, want.join(" or ")),
        ));
        return None;
    }
    Some(i)
}

/// A duration in whole milliseconds, at least 1 ms; a diagnostic at the value otherwise.
pub(crate) fn millis(
    d: &Spanned<eddy_api::config::ConfigDuration>,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<i64> {
    match i64::try_from(d.value.0.as_millis()) {
        Ok(ms) if ms >= 1 => Some(ms),
        Ok(_) => {
            diags.push(Diagnostic::at(d.span, format!("{what} must be at least 1ms")));
            None
        }
        Err(_) => {
            diags.push(Diagnostic::at(d.span, format!("{what} is too large")));
            None
        }
    }
}
