//! The host's workers: a fixed pool of threads, one per run that may be in
//! the air at once, fed by one channel. A run is a blocking job (wasmtime
//! runs the guest on the calling thread), so each takes a thread for its
//! whole flight; keeping the threads, instead of starting a blocking task
//! per run, keeps the controller's take-off cheap and the thread count
//! fixed. A job that panics takes only itself down: its caller hears of it.
//!
//! A run that may wait on its children is a task instead ([`Workers::spawn`]):
//! the workers poll it like a job, and when it waits (its guest suspended
//! on a fiber in `join`) the poll returns and the thread takes the next
//! job; when its children are done, its waker puts it back in the channel.
//! The threads are plain threads, outside any tokio runtime, as the sync
//! runs' are (WASI's blocking calls start a runtime of their own there).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct Workers {
    jobs: Arc<Mutex<Sender<Job>>>,
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
            jobs: Arc::new(Mutex::new(jobs)),
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
        send(&self.jobs, job);
    }

    /// Polls `task` on the workers until it is done, giving its thread
    /// back whenever it waits; `done` gets its result, or what it
    /// panicked with.
    pub fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
        done: impl FnOnce(Result<T, String>) + Send + 'static,
    ) {
        let task = async move { done(Unwinding(Box::pin(task)).await) };
        let jobs = self.jobs.clone();
        let schedule = move |runnable: async_task::Runnable| {
            send(
                &jobs,
                Box::new(move || {
                    runnable.run();
                }),
            );
        };
        let (runnable, handle) = async_task::spawn(task, schedule);
        // Nobody awaits the handle: the task runs to its end on its own.
        handle.detach();
        runnable.schedule();
    }
}

fn send(jobs: &Mutex<Sender<Job>>, job: Job) {
    let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
    // The workers live as long as this pool: a send cannot fail.
    let _ = jobs.send(job);
}

/// A future whose panic is its output (`Err` with what it said), so a
/// panicking run fails alone.
struct Unwinding<T>(Pin<Box<dyn Future<Output = T> + Send>>);

impl<T> Future for Unwinding<T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(format!("panicked: {}", panic_text(&*p)))),
        }
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
