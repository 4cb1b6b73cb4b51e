//! Turns pytest's coloured output into styled text: the basic SGR codes
//! (bold, dim, italic, underline, the 16 colours and their bright forms)
//! become styles; every other escape sequence is removed. The parser keeps
//! its state between calls, since the log arrives in pieces.

/// How a piece of text looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// One of the 16 terminal colours, 8 to 15 being the bright ones.
    pub fg: Option<u8>,
    pub bg: Option<u8>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
}

impl Style {
    /// The CSS classes of this style, empty for plain text.
    pub fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(fg) = self.fg {
            classes.push(format!("ansi-fg-{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("ansi-bg-{bg}"));
        }
        for (on, name) in [
            (self.bold, "ansi-bold"),
            (self.dim, "ansi-dim"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ] {
            if on {
                classes.push(name.to_string());
            }
        }
        classes.join(" ")
    }

    fn apply_sgr(&mut self, params: &str) {
        let mut codes = params
            .split([';', ':'])
            .map(|code| code.parse::<u16>().unwrap_or(0));
        // `ESC[m` means reset, like `ESC[0m`.
        if params.is_empty() {
            *self = Style::default();
            return;
        }
        while let Some(code) = codes.next() {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                38 | 48 => {
                    // 256-colour and true-colour forms: only the first 16
                    // colours have a class; the others stay plain.
                    let colour = match codes.next() {
                        Some(5) => codes.next().filter(|n| *n < 16).map(|n| n as u8),
                        Some(2) => {
                            codes.next();
                            codes.next();
                            codes.next();
                            None
                        }
                        _ => None,
                    };
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
        }
    }
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub style: Style,
    pub text: String,
}

/// An escape sequence longer than this is not one we know: shown as text.
const MAX_PENDING: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsiParser {
    style: Style,
    /// The start of an escape sequence cut off at the end of the last piece.
    pending: String,
}

enum Escape {
    /// A complete sequence of this many bytes; `Some` holds SGR parameters.
    Complete(usize, Option<String>),
    /// The input ends inside the sequence.
    Incomplete,
}

/// Reads the escape sequence at the start of `input` (which starts with ESC).
fn read_escape(input: &str) -> Escape {
    let bytes = input.as_bytes();
    match bytes.get(1) {
        None => Escape::Incomplete,
        // CSI: parameters and intermediates, then a final byte 0x40..=0x7E.
        Some(b'[') => {
            for (index, byte) in bytes.iter().enumerate().skip(2) {
                if (0x40..=0x7e).contains(byte) {
                    let sgr = (*byte == b'm').then(|| input[2..index].to_string());
                    return Escape::Complete(index + 1, sgr);
                }
                if !(0x20..=0x3f).contains(byte) {
                    // Not a well-formed sequence: drop just the ESC and `[`.
                    return Escape::Complete(2, None);
                }
            }
            Escape::Incomplete
        }
        // OSC: up to BEL or ESC \.
        Some(b']') => {
            for (index, byte) in bytes.iter().enumerate().skip(2) {
                if *byte == 0x07 {
                    return Escape::Complete(index + 1, None);
                }
                if *byte == 0x1b {
                    return match bytes.get(index + 1) {
                        Some(b'\\') => Escape::Complete(index + 2, None),
                        Some(_) => Escape::Complete(index, None),
                        None => Escape::Incomplete,
                    };
                }
            }
            Escape::Incomplete
        }
        // Other escapes: intermediate bytes (0x20..=0x2F, as in the
        // charset choice `ESC ( B`), then one final byte.
        Some(byte) if byte.is_ascii() => {
            match bytes
                .iter()
                .skip(1)
                .position(|byte| !(0x20..=0x2f).contains(byte))
            {
                Some(at) if bytes[1 + at].is_ascii() => Escape::Complete(at + 2, None),
                Some(at) => Escape::Complete(at + 1, None),
                None => Escape::Incomplete,
            }
        }
        // A multi-byte character after ESC is kept as text.
        Some(_) => Escape::Complete(1, None),
    }
}

impl AnsiParser {
    /// Parses the next piece of output into styled segments.
    pub fn feed(&mut self, input: &str) -> Vec<Segment> {
        let mut text = std::mem::take(&mut self.pending);
        text.push_str(input);
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find('\x1b') {
            push_text(&mut current, &rest[..at]);
            let escape = &rest[at..];
            match read_escape(escape) {
                Escape::Complete(len, sgr) => {
                    if let Some(params) = sgr {
                        let mut next = self.style;
                        next.apply_sgr(&params);
                        if next != self.style {
                            flush(&mut segments, &mut current, self.style);
                            self.style = next;
                        }
                    }
                    rest = &escape[len..];
                }
                Escape::Incomplete if escape.len() <= MAX_PENDING => {
                    self.pending = escape.to_string();
                    rest = "";
                }
                Escape::Incomplete => {
                    // Too long to be a real sequence: drop the ESC only.
                    rest = &escape[1..];
                }
            }
        }
        push_text(&mut current, rest);
        flush(&mut segments, &mut current, self.style);
        segments
    }
}

/// Adds text, without the carriage returns of CRLF line ends.
fn push_text(current: &mut String, text: &str) {
    current.extend(text.chars().filter(|c| *c != '\r'));
}

fn flush(segments: &mut Vec<Segment>, current: &mut String, style: Style) {
    if current.is_empty() {
        return;
    }
    let text = std::mem::take(current);
    match segments.last_mut() {
        Some(last) if last.style == style => last.text.push_str(&text),
        _ => segments.push(Segment { style, text }),
    }
}

/// The text without any escape sequence.
#[cfg(test)]
fn plain(segments: &[Segment]) -> String {
    segments.iter().map(|s| s.text.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn red() -> Style {
        Style {
            fg: Some(1),
            ..Style::default()
        }
    }

    #[wasm_bindgen_test]
    fn plain_text_is_one_plain_segment() {
        let segments = AnsiParser::default().feed("collected 3 items\n");
        assert_eq!(
            segments,
            vec![Segment {
                style: Style::default(),
                text: "collected 3 items\n".into()
            }]
        );
    }

    #[wasm_bindgen_test]
    fn pytest_colours_become_styles() {
        let segments = AnsiParser::default()
            .feed("test_a.py::t \x1b[32mPASSED\x1b[0m\n\x1b[31m\x1b[1mFAILED\x1b[0m");
        assert_eq!(plain(&segments), "test_a.py::t PASSED\nFAILED");
        assert_eq!(segments[1].style.fg, Some(2));
        assert_eq!(segments[1].style.classes(), "ansi-fg-2");
        let failed = &segments[3];
        assert_eq!(failed.text, "FAILED");
        assert_eq!(failed.style.classes(), "ansi-fg-1 ansi-bold");
    }

    #[wasm_bindgen_test]
    fn bright_and_256_colours_map_to_the_sixteen() {
        let mut parser = AnsiParser::default();
        let segments =
            parser.feed("\x1b[91ma\x1b[38;5;3mb\x1b[38;5;200mc\x1b[38;2;1;2;3md\x1b[39me");
        let colours: Vec<_> = segments
            .iter()
            .map(|s| (s.text.as_str(), s.style.fg))
            .collect();
        assert_eq!(colours, vec![("a", Some(9)), ("b", Some(3)), ("cde", None)]);
    }

    #[wasm_bindgen_test]
    fn state_and_cut_sequences_carry_over_pieces() {
        let mut parser = AnsiParser::default();
        let first = parser.feed("ok \x1b[3");
        assert_eq!(plain(&first), "ok ");
        let second = parser.feed("1mred");
        assert_eq!(
            second,
            vec![Segment {
                style: red(),
                text: "red".into()
            }]
        );
        let third = parser.feed(" still red\x1b[m plain");
        assert_eq!(third[0].style, red());
        assert_eq!(third[1].style, Style::default());
        assert_eq!(plain(&third), " still red plain");
    }

    #[wasm_bindgen_test]
    fn other_sequences_are_removed_cleanly() {
        let segments =
            AnsiParser::default().feed("a\x1b[2Kb\x1b]0;title\x07c\x1b(Bd\r\n\x1b[?25le");
        assert_eq!(plain(&segments), "abcd\ne");
        assert!(segments.iter().all(|s| s.style == Style::default()));
    }
}
