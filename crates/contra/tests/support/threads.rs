//! Computations on a chosen number of compute threads.

/// `f` in a rayon pool of `threads` threads: flex's parallel kernels split their work over the
/// pool they run in.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}
