//! A group of ranks that are threads of one process: the same collective operations as MPI,
//! through shared memory, so that the distributed arithmetic is tested without MPI.

use super::Collective;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a rank waits in a collective for the others before it fails (MPI groups end the
/// process after their timeout likewise).
const TIMEOUT: Duration = Duration::from_secs(300);

struct Shared {
    size: usize,
    slots: Mutex<Vec<Vec<u8>>>,
    meeting: Mutex<Meeting>,
    arrived: Condvar,
    timeout: Duration,
}

/// The ranks at the current barrier, which barrier it is, and whether a rank left the group
/// early (its thread panicked, or it made fewer collective calls than the others).
#[derive(Default)]
struct Meeting {
    waiting: usize,
    generation: u64,
    broken: Option<usize>,
}

struct LocalRank {
    rank: usize,
    shared: Arc<Shared>,
    sent: AtomicU64,
}

/// `n` ranks, one for each thread that will join the group ([`super::within`]). Each thread
/// builds its own model, as each MPI process does: threads that share a model's parameters
/// share one autodiff graph behind one lock, and a collective inside the backward pass
/// (synchronised BatchNorm) then deadlocks. A rank that waits in a collective for a rank that
/// has left the group, or for more than 300 s, panics instead of hanging.
pub fn local_group(n: usize) -> Vec<Box<dyn Collective + Send>> {
    group_with_timeout(n, TIMEOUT)
}

fn group_with_timeout(n: usize, timeout: Duration) -> Vec<Box<dyn Collective + Send>> {
    let shared = Arc::new(Shared {
        size: n,
        slots: Mutex::new(vec![Vec::new(); n]),
        meeting: Mutex::new(Meeting::default()),
        arrived: Condvar::new(),
        timeout,
    });
    (0..n)
        .map(|rank| {
            Box::new(LocalRank {
                rank,
                shared: shared.clone(),
                sent: AtomicU64::new(0),
            }) as Box<dyn Collective + Send>
        })
        .collect()
}

impl LocalRank {
    /// Every rank's bytes: written, read after all have written, and not overwritten until
    /// all have read.
    fn exchange(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.shared.slots.lock().expect("group lock")[self.rank] = bytes.to_vec();
        self.meet();
        let all = self.shared.slots.lock().expect("group lock").clone();
        self.meet();
        all
    }

    /// Wait until every rank has reached this barrier.
    fn meet(&self) {
        let mut m = self.shared.meeting.lock().expect("group lock");
        if m.broken.is_none() {
            let generation = m.generation;
            m.waiting += 1;
            if m.waiting == self.shared.size {
                m.waiting = 0;
                m.generation += 1;
                self.shared.arrived.notify_all();
                return;
            }
            m = self
                .shared
                .arrived
                .wait_timeout_while(m, self.shared.timeout, |m| {
                    m.generation == generation && m.broken.is_none()
                })
                .expect("group lock")
                .0;
            if m.generation != generation {
                return;
            }
        }
        let message = match m.broken {
            Some(r) => format!(
                "rank {} of a thread group: rank {r} left the group before this collective",
                self.rank
            ),
            None => format!(
                "rank {} of a thread group waited {} s in a collective: another rank never \
                 called it (threads sharing one model deadlock: see local_group)",
                self.rank,
                self.shared.timeout.as_secs_f64()
            ),
        };
        // Unlocked first: the lock stays usable for the other ranks' failures.
        drop(m);
        panic!("{message}");
    }
}

impl Drop for LocalRank {
    /// A rank that leaves wakes the ranks still waiting for it: they fail at once.
    fn drop(&mut self) {
        if let Ok(mut m) = self.shared.meeting.lock() {
            m.broken.get_or_insert(self.rank);
        }
        self.shared.arrived.notify_all();
    }
}

impl Collective for LocalRank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn all_reduce_sum(&self, values: &mut [f32]) {
        let all = self.exchange(&super::f32_bytes(values));
        // In rank order on every rank: the same bits everywhere.
        values.fill(0.0);
        for bytes in &all {
            for (v, x) in values.iter_mut().zip(super::bytes_f32(bytes)) {
                *v += x;
            }
        }
    }
    fn all_gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        self.exchange(local)
    }
    fn barrier(&self) {
        self.meet();
    }
    fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: Box<dyn std::any::Any + Send>) -> String {
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn a_rank_waiting_for_one_that_failed_fails_instead_of_hanging() {
        let mut ranks = group_with_timeout(2, TIMEOUT).into_iter();
        let (first, second) = (ranks.next().unwrap(), ranks.next().unwrap());
        let waiting = std::thread::spawn(move || first.all_reduce_sum(&mut [1.0]));
        std::thread::spawn(move || {
            let _rank = second;
            panic!("this rank fails before the collective");
        })
        .join()
        .unwrap_err();
        let e = message(waiting.join().unwrap_err());
        assert!(e.contains("rank 1 left the group"), "{e}");
    }

    #[test]
    fn a_collective_that_another_rank_never_calls_times_out() {
        let mut ranks = group_with_timeout(2, Duration::from_millis(200)).into_iter();
        let (first, second) = (ranks.next().unwrap(), ranks.next().unwrap());
        let e = message(
            std::thread::spawn(move || first.all_gather_bytes(&[7]))
                .join()
                .unwrap_err(),
        );
        assert!(e.contains("waited 0.2 s in a collective"), "{e}");
        drop(second);
    }

    #[test]
    fn ranks_that_all_call_meet_every_time() {
        let results: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = group_with_timeout(3, TIMEOUT)
                .into_iter()
                .enumerate()
                .map(|(r, g)| {
                    s.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let mut v = [(r * i) as f32];
                                g.all_reduce_sum(&mut v);
                                g.barrier();
                                v[0]
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let expected: Vec<f32> = (0..50).map(|i| (3 * i) as f32).collect();
        assert!(results.iter().all(|r| *r == expected));
    }
}
