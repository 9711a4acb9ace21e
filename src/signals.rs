//! Stopping on request: SIGINT (Ctrl-C), SIGTERM and SIGHUP all take the same clean-up path
//! (stop scheduling, remove containers, write the summary).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The three stop signals, listened to from creation on, so a signal that arrives early
/// still takes the clean-up path.
pub struct Shutdown {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Shutdown {
    pub fn listen() -> std::io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the first stop signal; returns the exit code shells report for it
    /// (128 + the signal number).
    pub async fn recv(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => 128 + 2,
            _ = self.term.recv() => 128 + 15,
            _ = self.hup.recv() => 128 + 1,
        }
    }
}
