//! Threads of their own fed by one queue: the store's SQLite readers (`store::reader`) and
//! the password hashers (`domain::password`). Each thread keeps what it needs between jobs
//! (a connection, a 19 MiB buffer), and a thread that finishes a job takes the next queued
//! one at once, with no async task woken in between.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// Starts `count` (at least one) threads named `<name>-<n>`. Each gets its own worker from
/// `make_worker` and gives it every job it takes from the queue. The queue is unbounded:
/// sending never waits, so callers that await their answer bound it. The threads end when
/// every sender is dropped.
pub fn spawn<J, W>(
    name: &str,
    count: usize,
    make_worker: impl Fn() -> W,
) -> std::io::Result<mpsc::Sender<J>>
where
    J: Send + 'static,
    W: FnMut(J) + Send + 'static,
{
    let (jobs, queue) = mpsc::channel::<J>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count.max(1) {
        let queue = queue.clone();
        let mut worker = make_worker();
        std::thread::Builder::new()
            .name(format!("{name}-{n}"))
            .spawn(move || {
                loop {
                    // The lock is held only while waiting; idle threads queue on it.
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = next else { return };
                    // A job that panics loses only its own answer (its caller sees its
                    // reply dropped): the thread goes on, or with every thread gone the
                    // queue would hold its jobs forever.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| worker(job)));
                }
            })?;
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_keeps_its_worker_and_survives_a_panicking_job() {
        let jobs = spawn("test-jobs", 1, || {
            let mut done = 0;
            move |job: (bool, mpsc::Sender<usize>)| {
                let (panic, reply) = job;
                assert!(!panic, "a job that panics");
                done += 1;
                let _ = reply.send(done);
            }
        })
        .unwrap();
        let ask = |panic| {
            let (reply, answer) = mpsc::channel();
            jobs.send((panic, reply)).unwrap();
            answer.recv()
        };
        assert_eq!(ask(false), Ok(1));
        assert!(ask(true).is_err(), "its reply is dropped");
        assert_eq!(ask(false), Ok(2), "the same worker, on the same thread");
    }
}
