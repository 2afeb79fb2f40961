//! The local terminal: raw mode for `-t` sessions (restored when dropped) and its size.

use std::io::IsTerminal;

/// Puts the terminal in raw mode while it lives; a no-op when stdin is no terminal.
pub struct RawMode {
    active: bool,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let active =
            std::io::stdin().is_terminal() && crossterm::terminal::enable_raw_mode().is_ok();
        RawMode { active }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.active {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// The size of the terminal on stdout (or stdin) as (columns, rows), if there is one.
pub fn size() -> Option<(u16, u16)> {
    if !std::io::stdout().is_terminal() && !std::io::stdin().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .filter(|(w, h)| *w > 0 && *h > 0)
}
