//! Printing text that came from a build (attacker-controlled) to a terminal safely: colours
//! (SGR sequences) are kept when wanted, every other control sequence or character is shown as
//! visible text, so nothing can move the cursor, clear the screen, retitle the window, write
//! the clipboard or hide a line.

use std::borrow::Cow;

/// `text` made safe to print. With `colors`, SGR sequences (`ESC [ … m`) pass through;
/// otherwise they are removed.
pub fn sanitize(text: &str, colors: bool) -> Cow<'_, str> {
    if !text.chars().any(is_special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\u{1b}'
            && let Some(len) = sgr_len(&text[i..])
        {
            if colors {
                out.push_str(&text[i..i + len]);
            }
            // Skip the rest of the sequence.
            while chars.next_if(|&(j, _)| j < i + len).is_some() {}
            continue;
        }
        if is_special(c) {
            visible(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_special(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Length in bytes of an SGR sequence at the start of `s` (`ESC [`, digits and `;`/`:`, `m`).
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let params = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        .count();
    if params > 64 || !sgr_is_harmless(&rest[..params]) {
        return None;
    }
    (rest.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// Whether SGR parameters only style text: `8` (conceal) could hide a line, so it is shown as
/// text instead. Colour arguments (`38;5;8`, `48;2;r;g;b`) are skipped over.
fn sgr_is_harmless(params: &str) -> bool {
    let mut args = params.split(';');
    while let Some(arg) = args.next() {
        match arg {
            "38" | "48" | "58" => match args.next() {
                Some("5") => {
                    args.next();
                }
                Some("2") => {
                    args.nth(2);
                }
                _ => {}
            },
            "8" => return false,
            _ => {}
        }
    }
    true
}

fn visible(c: char, out: &mut String) {
    let n = u32::from(c);
    if n < 0x20 {
        out.push('^');
        out.push(char::from_u32(n + 0x40).unwrap_or('?'));
    } else if n == 0x7f {
        out.push_str("^?");
    } else {
        out.push_str(&format!("\\u{{{n:04x}}}"));
    }
}

/// Whether colours should be written to a stream that `is_terminal`.
pub fn colors_wanted(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn plain_text_is_untouched() {
        for s in ["hello", "tab\there", "ünïcödé ✓", ""] {
            assert_eq!(sanitize(s, true), s);
        }
    }

    #[test]
    fn colors_pass_or_go() {
        let s = "\u{1b}[1;32mok\u{1b}[0m \u{1b}[38;5;8mgrey\u{1b}[0m done";
        assert_eq!(sanitize(s, true), s);
        assert_eq!(sanitize(s, false), "ok grey done");
    }

    #[test]
    fn everything_else_is_shown_not_obeyed() {
        let cases = [
            ("\u{1b}[2J\u{1b}[1;1Hfake prompt", "^[[2J^[[1;1Hfake prompt"),
            ("\u{1b}]0;pwned\u{7}", "^[]0;pwned^G"),
            ("\u{1b}]52;c;ZXZpbA==\u{7}", "^[]52;c;ZXZpbA==^G"),
            ("line\rover", "line^Mover"),
            ("bell\u{7}", "bell^G"),
            ("back\u{8}", "back^H"),
            ("c1\u{9b}31m", "c1\\u{009b}31m"),
            ("del\u{7f}", "del^?"),
            ("bidi\u{202e}txt", "bidi\\u{202e}txt"),
            ("new\nline", "new^Jline"),
            ("hidden \u{1b}[8msecret", "hidden ^[[8msecret"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize(raw, true), want, "{raw:?}");
            assert!(!sanitize(raw, true).contains('\u{1b}'));
        }
    }
}
