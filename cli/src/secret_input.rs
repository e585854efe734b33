//! Secrets typed or piped in (a token to sign in with, a variable's value), never taken from the
//! command line, where shell history and `ps` would keep them. On a terminal: a prompt that does
//! not echo. Otherwise: stdin, never prompting.

use std::io::{self, BufRead, IsTerminal, Read};

/// Whether stdin is a terminal someone types at.
pub fn stdin_is_terminal() -> bool {
    io::stdin().is_terminal()
}

/// Asks on the terminal without echoing what is typed.
pub fn prompt_hidden(prompt: &str) -> io::Result<String> {
    rpassword::prompt_password(prompt)
}

/// The first line of stdin, without its line ending; `None` when stdin is empty.
pub fn line_from_stdin() -> io::Result<Option<String>> {
    let mut line = String::new();
    let read = io::stdin().lock().read_line(&mut line)?;
    Ok((read > 0).then(|| strip_one_newline(&line).to_owned()))
}

/// All of stdin, less one final line ending (what `echo` or a text editor adds).
pub fn all_of_stdin() -> io::Result<String> {
    let mut raw = String::new();
    io::stdin().lock().read_to_string(&mut raw)?;
    let stripped = strip_one_newline(&raw).len();
    raw.truncate(stripped);
    Ok(raw)
}

fn strip_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::strip_one_newline;

    #[test]
    fn only_one_line_ending_goes() {
        for (raw, want) in [
            ("value", "value"),
            ("value\n", "value"),
            ("value\r\n", "value"),
            ("value\n\n", "value\n"),
            ("line1\nline2\n", "line1\nline2"),
            ("  spaced  \n", "  spaced  "),
            ("\n", ""),
            ("", ""),
        ] {
            assert_eq!(strip_one_newline(raw), want, "{raw:?}");
        }
    }
}
