//! Text from the dumped machine made safe for a terminal: control
//! characters (ESC, newlines, DEL, C1) as `\xNN`, so that a process or a
//! log line on that machine cannot forge rows or drive the terminal.
//! JSON output keeps exact strings.

use std::borrow::Cow;

/// Appends `c`, escaped if it is a control character.
pub fn push_char(out: &mut String, c: char) {
    if c.is_control() {
        out.push_str(&format!("\\x{:02x}", c as u32));
    } else {
        out.push(c);
    }
}

/// `s` with its control characters escaped.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    s.chars().for_each(|c| push_char(&mut out, c));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("sh -c true"), "sh -c true");
        assert_eq!(
            printable("a\nb\tc\x1b[31m\x7f\u{9b}é"),
            "a\\x0ab\\x09c\\x1b[31m\\x7f\\x9bé"
        );
    }
}
