//! Standard output and error that never panic. `println!` panics when stdout
//! is gone (a closed pipe, `| head`, a restarted journald): the daemon must
//! keep forwarding then, and a CLI verb should stop quietly as `head`'s input
//! would. [`daemon_mode`] selects the first; the default is the second.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static DAEMON: AtomicBool = AtomicBool::new(false);

/// From now on, output that cannot be written is dropped and the process
/// goes on (the daemon's counters, metrics and drop capture still tell).
pub fn daemon_mode() {
    DAEMON.store(true, Ordering::Relaxed);
}

fn handle(r: std::io::Result<()>) {
    match r {
        Ok(()) => {}
        Err(_) if DAEMON.load(Ordering::Relaxed) => {}
        // The reader went away: nothing more anyone will read; stop quietly.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(_) => {}
    }
}

pub fn stdout(args: fmt::Arguments) {
    let mut o = std::io::stdout().lock();
    handle(o.write_fmt(args).and_then(|_| o.flush()));
}

pub fn stderr(args: fmt::Arguments) {
    handle(std::io::stderr().lock().write_fmt(args));
}

/// `println!` that never panics (see the module doc).
macro_rules! outln {
    () => { $crate::out::stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that never panics.
macro_rules! out {
    ($($t:tt)*) => { $crate::out::stdout(format_args!($($t)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($t:tt)*) => { $crate::out::stderr(format_args!("{}\n", format_args!($($t)*))) };
}
