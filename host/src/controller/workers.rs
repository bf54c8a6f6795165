//! The host's workers: a fixed pool of threads, one per run that may be in
//! the air at once, fed by one channel. A run is a blocking job (wasmtime
//! runs the guest on the calling thread), so each takes a thread for its
//! whole flight; keeping the threads, instead of starting a blocking task
//! per run, keeps the controller's take-off cheap and the thread count
//! fixed. A job that panics takes only itself down: its caller hears of it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct Workers {
    jobs: Mutex<Sender<Job>>,
}

impl Workers {
    /// `n` threads, waiting for jobs.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for k in 0..n.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("runway-worker-{k}"))
                .spawn(move || work(&queue))?;
        }
        Ok(Workers {
            jobs: Mutex::new(jobs),
        })
    }

    /// Runs `job` on the next free worker; `Err` with what it panicked
    /// with goes to `done` if it panics, else `done` gets its result.
    pub fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(Result<T, String>) + Send + 'static,
    ) {
        let job: Job = Box::new(move || {
            let ran = catch_unwind(AssertUnwindSafe(job))
                .map_err(|p| format!("panicked: {}", panic_text(&*p)));
            done(ran);
        });
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        // The workers live as long as this pool: a send cannot fail.
        let _ = jobs.send(job);
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(job) => job(),
            // The pool was dropped: the host is gone.
            Err(_) => return,
        }
    }
}

/// What a panic said, when it said it as text.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".into(),
    }
}
