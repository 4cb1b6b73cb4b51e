//! Test selection by pytest expression: `-k` (keyword) and `-m` (markers).
//! Both are checked here against pytest's own expression grammar, so that a
//! bad one is refused when the run is created, not met by pytest later:
//!
//! ```text
//! expr     := and_expr ("or" and_expr)*
//! and_expr := not_expr ("and" not_expr)*
//! not_expr := "not" not_expr | "(" expr ")" | ident
//! ident    := (letter | digit | _ : + - . [ ] \ /)+
//! ```

use serde::{Deserialize, Serialize};

/// The longest expression a run may carry, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1000;

/// What the grammar accepts besides letters, digits and `_`.
const IDENT_PUNCTUATION: &str = ":+-.[]\\/";

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || IDENT_PUNCTUATION.contains(c)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Ident,
}

/// Splits an expression into tokens with their (1-based) columns.
fn tokens(expression: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = expression.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push((Token::Open, column));
                i += 1;
            }
            ')' => {
                out.push((Token::Close, column));
                i += 1;
            }
            c if is_ident_char(c) => {
                let start = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let token = match word.as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Ident,
                };
                out.push((token, column));
            }
            c => {
                return Err(format!(
                    "{} at column {column} is not allowed: use names (letters, digits and _ : + - . [ ] \\ /) \
                     joined by and, or, not and parentheses",
                    describe(c)
                ))
            }
        }
    }
    Ok(out)
}

fn describe(c: char) -> String {
    if c.is_control() {
        format!("control character U+{:04X}", u32::from(c))
    } else {
        format!("{c:?}")
    }
}

/// A recursive-descent check of the grammar above.
struct Parser<'a> {
    tokens: &'a [(Token, usize)],
    at: usize,
    end_column: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.at)
            .map_or(self.end_column, |(_, column)| *column)
    }

    fn expr(&mut self, depth: usize) -> Result<(), String> {
        self.and_expr(depth)?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            self.and_expr(depth)?;
        }
        Ok(())
    }

    fn and_expr(&mut self, depth: usize) -> Result<(), String> {
        self.not_expr(depth)?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            self.not_expr(depth)?;
        }
        Ok(())
    }

    fn not_expr(&mut self, depth: usize) -> Result<(), String> {
        // Far deeper than anyone writes; keeps the check's stack small.
        if depth > 100 {
            return Err("is nested too deeply".into());
        }
        let column = self.column();
        match self.peek() {
            Some(Token::Not) => {
                self.at += 1;
                self.not_expr(depth + 1)
            }
            Some(Token::Open) => {
                self.at += 1;
                self.expr(depth + 1)?;
                if self.peek() == Some(&Token::Close) {
                    self.at += 1;
                    Ok(())
                } else {
                    Err(format!(
                        "has unbalanced parentheses: the '(' at column {column} is never closed"
                    ))
                }
            }
            Some(Token::Ident) => {
                self.at += 1;
                Ok(())
            }
            Some(Token::Close) => Err(format!(
                "has unbalanced parentheses or a missing name: unexpected ')' at column {column}"
            )),
            Some(Token::And) | Some(Token::Or) => Err(format!(
                "expects a name before the operator at column {column}"
            )),
            None => Err("ends where a name is expected".into()),
        }
    }
}

/// A `-k` or `-m` expression as a run keeps it: trimmed, `None` when
/// empty, else valid pytest expression syntax.
pub fn expression(raw: &str) -> Result<Option<String>, String> {
    if raw.contains(['\0', '\n', '\r']) {
        return Err("must be one line (no NUL or line breaks)".into());
    }
    let expression = raw.trim();
    if expression.is_empty() {
        return Ok(None);
    }
    if expression.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(format!("must be at most {MAX_EXPRESSION_CHARS} characters"));
    }
    if expression.starts_with('-') {
        return Err("must not start with '-' (pytest would read it as an option)".into());
    }
    let tokens = tokens(expression)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        end_column: expression.chars().count() + 1,
    };
    parser.expr(0)?;
    if let Some((token, column)) = tokens.get(parser.at) {
        return Err(match token {
            Token::Close => {
                format!("has unbalanced parentheses: the ')' at column {column} has no '('")
            }
            _ => format!("expects and, or or the end at column {column}"),
        });
    }
    Ok(Some(expression.to_string()))
}

/// A marker pytest knows for the tests root, as `pytest --markers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Marker {
    /// What `-m` names, e.g. `slow`.
    pub name: String,
    /// Its signature and help, e.g. `skipif(condition, ..., *, reason=...): skip ...`.
    pub description: String,
}

/// The markers in the output of `pytest --markers`: one line each,
/// `@pytest.mark.NAME[(ARGS)]: DESCRIPTION`.
pub fn parse_markers(output: &str) -> Vec<Marker> {
    let mut markers: Vec<Marker> = output
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("@pytest.mark.")?;
            let name_end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            if name.is_empty() {
                return None;
            }
            let description = match rest[name_end..].split_once(": ") {
                Some((signature, help)) => format!("{name}{signature}: {}", help.trim()),
                None => rest.trim_end_matches(':').to_string(),
            };
            Some(Marker {
                name: name.to_string(),
                description,
            })
        })
        .collect();
    markers.sort_by(|a, b| a.name.cmp(&b.name));
    markers.dedup_by(|a, b| a.name == b.name);
    markers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_expressions_are_kept_trimmed() {
        for good in [
            "slow",
            "  slow  ",
            "not slow",
            "smoke and not (slow or flaky)",
            "test_a[1-2] or TestK::test_b",
            "((a))",
            "not not a",
            "dir/file.py",
            "élan",
        ] {
            assert_eq!(
                expression(good),
                Ok(Some(good.trim().to_string())),
                "{good}"
            );
        }
        assert_eq!(expression("   "), Ok(None));
    }

    #[test]
    fn invalid_expressions_say_why() {
        let why = |raw: &str| expression(raw).unwrap_err();
        assert!(why("(slow").contains("never closed"), "{}", why("(slow"));
        assert!(why("slow)").contains("has no '('"), "{}", why("slow)"));
        assert!(why("slow and").contains("name is expected"));
        assert!(why("and slow").contains("column 1"));
        assert!(why("slow fast").contains("column 6"));
        assert!(why("a; rm -rf /").contains("';'"));
        assert!(why("a\nb").contains("one line"));
        assert!(why("a\0b").contains("one line"));
        assert!(why("$(id)").contains("'$'"));
        assert!(why("-x").contains("option"));
        assert!(why("()").contains("')'"));
        assert!(why(&"a ".repeat(600)).contains("at most"));
        assert!(why(&format!("{}a{}", "(".repeat(200), ")".repeat(200))).contains("deeply"));
    }

    #[test]
    fn markers_are_read_from_pytest_output() {
        let output = "@pytest.mark.slow: tests that take a while\n\n\
            @pytest.mark.skipif(condition, ..., *, reason=...): skip the given test function if any of the conditions evaluate to True.\n\
            @pytest.mark.tryfirst: mark a hook implementation function such that the plugin machinery will try to call it first/as early as possible. DEPRECATED, use @pytest.hookimpl(tryfirst=True) instead.\n\
            @pytest.mark.smoke:\n\
            other text\n";
        let markers = parse_markers(output);
        let names: Vec<&str> = markers.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["skipif", "slow", "smoke", "tryfirst"]);
        assert_eq!(markers[1].description, "slow: tests that take a while");
        assert!(markers[0].description.starts_with("skipif(condition"));
        assert_eq!(markers[2].description, "smoke");
    }
}
