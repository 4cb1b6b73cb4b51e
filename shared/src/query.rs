//! Parsing of the loosely typed values that query strings and form fields
//! carry, with the same leniency wherever the API reads one.

/// A boolean as a query or form value: `true`/`1`/`yes`/`on` and
/// `false`/`0`/`no`/`off`, in any case and with surrounding spaces.
/// An empty value is `None`, so the caller's default applies (a field
/// that a browser sends empty means "not said"); anything else is an
/// error message about the value.
pub fn parse_bool(raw: &str) -> Result<Option<bool>, String> {
    let value = raw.trim().to_ascii_lowercase();
    match value.as_str() {
        "" => Ok(None),
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        other => Err(format!("must be true or false, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spellings_of_true_and_false_are_read() {
        for yes in ["true", "1", "yes", "on", "TRUE", " Yes ", "On\n"] {
            assert_eq!(parse_bool(yes), Ok(Some(true)), "{yes:?}");
        }
        for no in ["false", "0", "no", "off", "False", " NO ", "\toff"] {
            assert_eq!(parse_bool(no), Ok(Some(false)), "{no:?}");
        }
    }

    #[test]
    fn an_empty_value_leaves_the_default() {
        assert_eq!(parse_bool(""), Ok(None));
        assert_eq!(parse_bool("   "), Ok(None));
    }

    #[test]
    fn anything_else_is_refused_with_the_value_named() {
        assert_eq!(
            parse_bool("maybe"),
            Err(r#"must be true or false, not "maybe""#.to_string())
        );
        assert!(parse_bool("2").is_err());
        assert!(parse_bool("y").is_err());
        assert!(parse_bool("truee").is_err());
    }
}
