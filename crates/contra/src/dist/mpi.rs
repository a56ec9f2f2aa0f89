//! Ranks that are MPI processes (`mpirun -n N contra ...`), on the system's MPI library.
//!
//! Only the thread that joined the group calls MPI (the `Funneled` level; rayon's workers
//! never do). A collective that waits longer than the group's timeout means a rank died or
//! hangs: the process then says so and exits non-zero, and `mpirun` ends the others.

use super::Collective;
use crate::error::{Error, Result};
use mpi::Threading;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

/// This process in `MPI_COMM_WORLD`.
pub struct MpiGroup {
    // Dropping the universe finalises MPI: it lives as long as the group.
    _universe: Universe,
    world: SimpleCommunicator,
    sent: AtomicU64,
    watchdog: SyncSender<Watch>,
}

enum Watch {
    Start(&'static str),
    Done,
}

impl MpiGroup {
    /// Initialise MPI. A collective that waits more than `timeout` ends the process.
    pub fn init(timeout: Duration) -> Result<Self> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| Error::other("MPI was already initialised in this process"))?;
        if level < Threading::Funneled {
            return Err(Error::other(format!(
                "the MPI library gives thread level {level:?}; contra needs Funneled"
            )));
        }
        let world = universe.world();
        let rank = world.rank();
        let (tx, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("contra-mpi-watchdog".into())
            .spawn(move || watch(rx, rank, timeout))
            .map_err(|e| Error::other(format!("starting the MPI watchdog: {e}")))?;
        Ok(Self {
            _universe: universe,
            world,
            sent: AtomicU64::new(0),
            watchdog: tx,
        })
    }

    fn guarded<T>(&self, what: &'static str, f: impl FnOnce() -> T) -> T {
        let _ = self.watchdog.send(Watch::Start(what));
        let out = f();
        let _ = self.watchdog.send(Watch::Done);
        out
    }
}

/// Ends the process when a collective does not finish within `timeout`.
fn watch(rx: Receiver<Watch>, rank: i32, timeout: Duration) {
    loop {
        let what = match rx.recv() {
            Ok(Watch::Start(what)) => what,
            Ok(Watch::Done) => continue,
            Err(_) => return,
        };
        match rx.recv_timeout(timeout) {
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                eprintln!(
                    "error: rank {rank}: no answer from the other ranks for {} s in {what}: a rank died or hangs; ending the job",
                    timeout.as_secs()
                );
                // Not a clean MPI exit: mpirun then stops the other ranks.
                std::process::exit(3);
            }
        }
    }
}

impl Collective for MpiGroup {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, values: &mut [f32]) {
        // Reduced at rank 0 and broadcast: the same bits on every rank, so the ranks' weights
        // never drift apart.
        self.sent
            .fetch_add(4 * values.len() as u64, Ordering::Relaxed);
        self.guarded("all-reduce", || {
            let root = self.world.process_at_rank(0);
            if self.world.rank() == 0 {
                let mut sum = vec![0f32; values.len()];
                root.reduce_into_root(
                    &values[..],
                    &mut sum[..],
                    mpi::collective::SystemOperation::sum(),
                );
                values.copy_from_slice(&sum);
            } else {
                root.reduce_into(&values[..], mpi::collective::SystemOperation::sum());
            }
            root.broadcast_into(values);
        })
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        self.sent.fetch_add(local.len() as u64, Ordering::Relaxed);
        self.guarded("all-gather", || {
            let n = self.world.size() as usize;
            let mut counts = vec![0 as mpi::Count; n];
            self.world
                .all_gather_into(&(local.len() as mpi::Count), &mut counts[..]);
            let displs: Vec<mpi::Count> = counts
                .iter()
                .scan(0, |acc, &c| {
                    let d = *acc;
                    *acc += c;
                    Some(d)
                })
                .collect();
            let total = counts.iter().map(|&c| c as usize).sum();
            let mut buf = vec![0u8; total];
            {
                let mut partition = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                self.world.all_gather_varcount_into(local, &mut partition);
            }
            counts
                .iter()
                .zip(&displs)
                .map(|(&c, &d)| buf[d as usize..(d + c) as usize].to_vec())
                .collect()
        })
    }

    fn barrier(&self) {
        self.guarded("barrier", || self.world.barrier())
    }

    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn abort(&self, code: i32) {
        self.world.abort(code)
    }
}
