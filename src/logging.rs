//! Tracing setup: everything to the run's `run.log`, warnings and errors to the terminal
//! (printed above the progress bars so they do not tear them).

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// `quiet` also sends info lines to stderr, since there is no progress display then.
pub fn init(log_file: Option<&Path>, quiet: bool) -> Result<(), crate::PipelineError> {
    let terminal_level = if quiet { "info" } else { "warn" };
    // Colour only on a terminal: `run --quiet 2>&1 | tee log` gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let terminal = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .with_filter(
            EnvFilter::try_from_env("CWM_BENCH_LOG")
                .unwrap_or_else(|_| EnvFilter::new(terminal_level)),
        );
    let file_layer = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| crate::PipelineError::Io {
                    what: format!("opening log file {}", path.display()),
                    source,
                })?;
            let layer = fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Arc::new(file))
                .with_filter(EnvFilter::new("info"));
            Some(layer)
        }
        None => None,
    };
    // A second init (tests calling run twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(terminal)
        .with(file_layer)
        .try_init();
    Ok(())
}

/// An error and its causes on one line, each cause once: errors that already print their
/// cause (e.g. `cannot write X: No space left on device`) would otherwise repeat it.
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut chain = Some(err);
    while let Some(cause) = chain {
        chain = cause.source();
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
