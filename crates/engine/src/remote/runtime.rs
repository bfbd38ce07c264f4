//! Where the async runtime lives. `object_store` is async; the engine is
//! threads and rayon. The engine calls the remote only from its scheduler
//! threads and `exec-node` (never from inside a rayon task or an async
//! context), so one process-wide tokio runtime, started on first use, and
//! [`block_on`] are all the bridge needed. Two worker threads drive the
//! sockets; the calling threads wait, so remote transfers never take a rayon
//! worker away from a stage.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread().worker_threads(2).thread_name("radpipe-remote").enable_all().build().expect("the tokio runtime of the remote cache starts")
    })
}

/// Run a future to completion on the remote's runtime, from a plain thread.
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
