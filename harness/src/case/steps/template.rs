//! Repetition: a declaration, step or thread written once with `{i}` (and, in threads,
//! `{t}`) in its strings stands for many. `{…}` holds an expression of integers and the
//! variables in scope with `+`, `-` and `*` (`{t*64+i}`); a string that is nothing but one
//! `{…}` becomes the integer itself, so `value: "{i}"` is a number.

use serde_json::Value;

use crate::case::limits::{EXPRESSION_EXPANDS_TO, MAX_EXPRESSION_BYTES};

/// Substitutes every `{expr}` in the strings of `value` (keys included).
pub fn expand(value: &Value, vars: &[(&str, i64)]) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => expand_string(text, vars)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| expand(item, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, item)| Ok((expand_name(key, vars)?, expand(item, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A name with `{expr}` parts: always a string.
pub fn expand_name(text: &str, vars: &[(&str, i64)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`{{` without `}}` in {text:?}"))?;
        out.push_str(&rest[..open]);
        out.push_str(&eval(&rest[open + 1..open + close], vars)?.to_string());
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_string(text: &str, vars: &[(&str, i64)]) -> Result<Value, String> {
    let whole = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    match whole {
        Some(expr) if !expr.contains(['{', '}']) => Ok(Value::from(eval(expr, vars)?)),
        _ => expand_name(text, vars).map(Value::String),
    }
}

/// A sum of products of integers and variables; a result or step past 64 bits is an error.
fn eval(expr: &str, vars: &[(&str, i64)]) -> Result<i64, String> {
    let names = || {
        vars.iter()
            .map(|(name, _)| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let overflow = || {
        let values: Vec<String> = vars
            .iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect();
        format!(
            "`{{{expr}}}` overflows a 64-bit integer with {}",
            values.join(", ")
        )
    };
    let mut sum = 0i64;
    for (sign, term) in split_terms(expr) {
        let mut product = 1i64;
        for factor in term.split('*').map(str::trim) {
            let value = match factor.parse::<i64>() {
                Ok(n) => n,
                Err(_) => vars
                    .iter()
                    .find(|(name, _)| *name == factor)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        format!(
                            "`{{{expr}}}`: `{factor}` is neither an integer nor a variable here ({})",
                            names()
                        )
                    })?,
            };
            product = product.checked_mul(value).ok_or_else(overflow)?;
        }
        let next = if sign < 0 {
            sum.checked_sub(product)
        } else {
            sum.checked_add(product)
        };
        sum = next.ok_or_else(overflow)?;
    }
    Ok(sum)
}

/// Whether any `{…}` of `value`'s strings (keys included) names the variable `var`: when
/// none does, `value` expands alike whatever `var` is.
pub fn mentions(value: &Value, var: &str) -> bool {
    let in_text = |text: &str| {
        expressions(text).any(|expr| {
            split_terms(expr)
                .iter()
                .any(|(_, term)| term.split('*').any(|factor| factor.trim() == var))
        })
    };
    match value {
        Value::String(text) => in_text(text),
        Value::Array(items) => items.iter().any(|item| mentions(item, var)),
        Value::Object(entries) => entries
            .iter()
            .any(|(key, item)| in_text(key) || mentions(item, var)),
        _ => false,
    }
}

/// The insides of `text`'s closed `{…}` parts.
fn expressions(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let open = rest.find('{')?;
        let close = rest[open..].find('}')?;
        let expr = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        Some(expr)
    })
}

/// The most bytes `text` can come to once its `{…}` parts are expanded: each counts
/// [`EXPRESSION_EXPANDS_TO`] bytes, or its own length when that is longer. Refuses, with its
/// length, an expression longer than [`MAX_EXPRESSION_BYTES`]. Nothing is evaluated.
pub fn expanded_size(text: &str) -> Result<u64, u64> {
    let mut size = 0u64;
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        // An unclosed `{` is left to the expansion to report.
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let expression = (close + 1) as u64;
        if expression > MAX_EXPRESSION_BYTES {
            return Err(expression);
        }
        size += open as u64 + expression.max(EXPRESSION_EXPANDS_TO);
        rest = &rest[open + close + 1..];
    }
    Ok(size + rest.len() as u64)
}

/// `a+b-c` as `[(1, a), (1, b), (-1, c)]`.
fn split_terms(expr: &str) -> Vec<(i64, &str)> {
    let mut terms = Vec::new();
    let mut sign = 1;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        if (c == '+' || c == '-') && !expr[start..i].trim().is_empty() {
            terms.push((sign, &expr[start..i]));
            sign = if c == '+' { 1 } else { -1 };
            start = i + 1;
        }
    }
    terms.push((sign, &expr[start..]));
    terms
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_and_numbers_are_substituted() {
        let vars = [("t", 2), ("i", 5)];
        assert_eq!(expand_name("s{t*64+i}", &vars).unwrap(), "s133");
        assert_eq!(expand_name("m{i-1}_x", &vars).unwrap(), "m4_x");
        let value = json!({ "map": "m{i}", "value": "{i*10}", "keep": 3, "text": "a{i}b" });
        assert_eq!(
            expand(&value, &vars).unwrap(),
            json!({ "map": "m5", "value": 50, "keep": 3, "text": "a5b" })
        );
    }

    #[test]
    fn arithmetic_past_64_bits_is_an_error_not_a_saturation() {
        let err =
            expand_name("{9223372036854775807*9223372036854775807*i}", &[("i", 1)]).unwrap_err();
        assert_eq!(
            err,
            "`{9223372036854775807*9223372036854775807*i}` overflows a 64-bit integer with i = 1"
        );
        assert!(expand_name("{0-9223372036854775807-2}", &[]).is_err());
        assert_eq!(
            expand_name("{9223372036854775807-1+1}", &[]).unwrap(),
            "9223372036854775807"
        );
        assert_eq!(
            expand_name("{0-9223372036854775807-1}", &[]).unwrap(),
            "-9223372036854775808"
        );
    }

    #[test]
    fn expanded_sizes_bound_every_expression_without_evaluating_it() {
        assert_eq!(expanded_size("plain"), Ok(5));
        // `s` and `_x`, and each expression as the longest integer.
        assert_eq!(expanded_size("s{t*64+i}_x{i}"), Ok(3 + 2 * 20));
        let long = format!("{{{}}}", "1+".repeat(40) + "1");
        assert_eq!(expanded_size(&format!("a{long}")), Err(long.len() as u64));
        // An expression at the limit counts its own length.
        let at_limit = format!("{{{}}}", "1".repeat(62));
        assert_eq!(expanded_size(&at_limit), Ok(64));
        assert_eq!(expanded_size("a{b"), Ok(3));
    }

    #[test]
    fn mentions_finds_a_variable_in_any_expression_of_any_string_or_key() {
        let value = json!({ "map": "m", "key": ["x", "{t*64 + 3}"], "v{ i }": 1 });
        assert!(mentions(&value, "t"));
        assert!(mentions(&value, "i"));
        let value = json!({ "map": "it", "key": "{ti}", "value": 5 });
        assert!(
            !mentions(&value, "t"),
            "`ti` is another name, `it` no expression"
        );
        assert!(!mentions(&value, "i"));
        assert!(
            !mentions(&json!("{i"), "i"),
            "an unclosed `{{` is no expression"
        );
    }

    #[test]
    fn unknown_variables_are_named() {
        let err = expand_name("s{j}", &[("i", 0)]).unwrap_err();
        assert!(err.contains("`j` is neither"), "{err}");
        assert!(err.contains("`i`"), "{err}");
        assert!(
            expand_name("s{i", &[("i", 0)])
                .unwrap_err()
                .contains("without")
        );
    }
}
