//! Runs finishing, as an in-process event: whoever waits for a run to end
//! (a cancel request) hears it at once, whether this instance or another
//! one (through the listener) finished it.

use std::time::Duration;

use tokio::sync::broadcast;

/// How many finishes a slow listener may fall behind before it is told
/// that it missed some (and looks again).
const BACKLOG: usize = 256;

/// The sending side, kept by the scheduler.
#[derive(Debug)]
pub struct RunEvents {
    finished: broadcast::Sender<i64>,
}

impl Default for RunEvents {
    fn default() -> Self {
        RunEvents {
            finished: broadcast::channel(BACKLOG).0,
        }
    }
}

impl RunEvents {
    /// Run `id` has its final status written.
    pub fn finished(&self, id: i64) {
        // Nobody listening is fine.
        let _ = self.finished.send(id);
    }

    pub fn subscribe(&self) -> FinishedRuns {
        FinishedRuns(self.finished.subscribe())
    }
}

/// Finishes heard since subscribing.
pub struct FinishedRuns(broadcast::Receiver<i64>);

impl FinishedRuns {
    /// Waits until run `id` finishes or `patience` runs out; true if it
    /// finished (or finishes were missed, which is worth a look).
    pub async fn wait_for(&mut self, id: i64, patience: Duration) -> bool {
        let heard = async {
            loop {
                match self.0.recv().await {
                    Ok(finished) if finished == id => return true,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::time::timeout(patience, heard).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_hears_its_run_and_only_its_run() {
        let events = RunEvents::default();
        let mut waiter = events.subscribe();
        events.finished(1);
        events.finished(2);
        assert!(waiter.wait_for(2, Duration::from_secs(5)).await);
        let mut late = events.subscribe();
        assert!(
            !late.wait_for(2, Duration::from_millis(20)).await,
            "finished before it listened"
        );
    }
}
