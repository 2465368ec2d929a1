//! The daemon's log: `tracing` events with a level, to stderr.
//!
//! - `text` (default): UTC timestamp, level, message — for a terminal or a
//!   file.
//! - `json`: one JSON object per line (timestamp, level, fields) — for log
//!   shippers.
//! - Under systemd, when stderr *is* the journal (`JOURNAL_STREAM` names
//!   stderr's device and inode), text lines carry no timestamp (journald
//!   stamps them) and start with the `<N>` syslog priority journald reads
//!   (sd-daemon(3)), so `journalctl -p warning` filters by level.
//!
//! The level filter is `--log-level` (default `info`), or `MNP_LOG` in the
//! `tracing-subscriber` directive syntax (`MNP_LOG=debug`). Stats lines and
//! the exit summary stay on stdout: they are the run's output, not its log.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Install the process's log subscriber (once; later calls do nothing).
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("MNP_LOG")
        .ok()
        .and_then(|d| EnvFilter::try_new(d).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written is dropped: the default would
        // report it with eprintln!, which panics once stderr is a closed pipe.
        .log_internal_errors(false)
        .with_target(false);
    let _ = match (format, stderr_is_journal()) {
        (LogFormat::Json, _) => builder.json().with_current_span(false).try_init(),
        (LogFormat::Text, true) => builder.event_format(Journald).try_init(),
        (LogFormat::Text, false) => builder.with_ansi(false).try_init(),
    };
}

/// `JOURNAL_STREAM` is `DEVICE:INODE` of the stream systemd connected to
/// the journal; it applies only if stderr is still that stream.
fn stderr_is_journal() -> bool {
    names_stderr(std::env::var("JOURNAL_STREAM").ok().as_deref())
}

fn names_stderr(stream: Option<&str>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((dev, ino)) = stream.and_then(|s| s.split_once(':')) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|m| dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()))
}

/// `<priority>message`, as journald reads a stream.
struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "<{}>", priority(*event.metadata().level()))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// syslog priority of a level: err, warning, info, debug.
fn priority(l: Level) -> u8 {
    match l {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(
            [
                Level::ERROR,
                Level::WARN,
                Level::INFO,
                Level::DEBUG,
                Level::TRACE
            ]
            .map(priority),
            [3, 4, 6, 7, 7]
        );
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        use std::os::unix::fs::MetadataExt;
        assert!(!names_stderr(None));
        assert!(!names_stderr(Some("1:1")));
        assert!(!names_stderr(Some("garbage")));
        let m = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert!(names_stderr(Some(&format!("{}:{}", m.dev(), m.ino()))));
    }
}
