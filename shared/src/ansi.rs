//! Plain text out of terminal output: pytest colours its lines, and
//! whoever reads the words in them (counting outcomes, searching) must not
//! trip over the escape codes.

const ESC: char = '\u{1b}';

/// `line` without its CSI sequences (ESC `[`, parameters, then a final
/// byte from `@` to `~`), the ones colours and cursor moves use. Any
/// other ESC is dropped alone, leaving what follows it as text.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ESC {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_codes_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[32mPASSED\u{1b}[0m \u{1b}[1m[ 50%]"),
            "PASSED [ 50%]"
        );
    }

    #[test]
    fn plain_text_is_left_alone() {
        assert_eq!(strip_ansi("collected 3 items ✓"), "collected 3 items ✓");
        assert_eq!(strip_ansi(""), "");
    }

    #[test]
    fn a_lone_escape_goes_and_the_text_after_it_stays() {
        assert_eq!(strip_ansi("a\u{1b}(Bb"), "a(Bb");
        assert_eq!(strip_ansi("end\u{1b}"), "end");
    }

    #[test]
    fn cursor_moves_and_cut_sequences_go_too() {
        assert_eq!(strip_ansi("a\u{1b}[2Kb\u{1b}[?25lc"), "abc");
        // A sequence cut off at the end of the line takes the rest.
        assert_eq!(strip_ansi("ok \u{1b}[3"), "ok ");
    }
}
