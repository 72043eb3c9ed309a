//! Presentation: tables for people on a terminal, tab-separated text for pipes, ages in
//! words, and a small spinner on stderr while the network is slow.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How to draw output: aligned and styled for a person, or plain for a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    /// Align columns (a person reads this) rather than separating them with tabs.
    pub aligned: bool,
    /// Bold headers; only on a terminal and when `NO_COLOR` is unset.
    pub bold: bool,
}

impl Style {
    #[cfg(test)]
    pub(crate) const PLAIN: Style = Style { aligned: false, bold: false };

    /// The style for stdout as it is now.
    pub(crate) fn detect() -> Style {
        let terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style { aligned: terminal, bold: terminal && !no_color }
    }
}

/// A table of text cells.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Aligned columns two spaces apart, or one tab between cells.
    pub(crate) fn render(&self, style: Style) -> String {
        let mut out = String::new();
        if !style.aligned {
            for row in std::iter::once(&self.header).chain(&self.rows) {
                out.push_str(&row.join("\t"));
                out.push('\n');
            }
            return out;
        }
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                s.push_str(cell);
                if !last {
                    let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count()) + 2;
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s
        };
        let header = line(&self.header);
        if style.bold {
            out.push_str(&format!("\x1b[1m{header}\x1b[0m\n"));
        } else {
            out.push_str(&header);
            out.push('\n');
        }
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// An age in words: `just now`, `12 min ago`, `3 h ago`, `5 days ago`.
pub(crate) fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..172_800 => format!("{} h ago", s / 3_600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// `1 model`, `2 models`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// A thousands-separated number, e.g. `131,072`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A spinner on stderr while something slow runs; drawn only when stderr is a terminal,
/// and erased when dropped.
#[derive(Debug)]
pub(crate) struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub(crate) fn start(message: String) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Spinner { stop, thread: None };
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let mut i = 0;
            let mut err = std::io::stderr();
            while !flag.load(Ordering::Acquire) {
                let _ = write!(err, "\r{} {message}", FRAMES[i % FRAMES.len()]);
                let _ = err.flush();
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            // Erase the line so that what follows starts clean.
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        });
        Spinner { stop, thread: Some(thread) }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(table: &Table, style: Style, expected: &str) {
        assert_eq!(table.render(style), expected);
    }

    #[test]
    fn tables() {
        let mut t = Table::new(&["id", "context"]);
        t.push(vec!["a/long-name:free".into(), "8,192".into()]);
        t.push(vec!["b:free".into(), "131,072".into()]);
        check(&t, Style::PLAIN, "id\tcontext\na/long-name:free\t8,192\nb:free\t131,072\n");
        check(
            &t,
            Style { aligned: true, bold: false },
            "id                context\na/long-name:free  8,192\nb:free            131,072\n",
        );
        check(
            &t,
            Style { aligned: true, bold: true },
            "\x1b[1mid                context\x1b[0m\na/long-name:free  8,192\nb:free            131,072\n",
        );
    }

    #[test]
    fn words() {
        assert_eq!(age(Duration::from_secs(5)), "just now");
        assert_eq!(age(Duration::from_secs(125)), "2 min ago");
        assert_eq!(age(Duration::from_secs(7_300)), "2 h ago");
        assert_eq!(age(Duration::from_secs(86_400 * 40)), "40 days ago");
        assert_eq!(count(1, "free model"), "1 free model");
        assert_eq!(count(0, "attempt"), "0 attempts");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(131_072), "131,072");
        assert_eq!(thousands(1_048_576), "1,048,576");
    }
}
