//! Seeded initialisation: burn draws initial weights from the device's process-wide
//! generator, so building a module reproducibly means seeding it and drawing every weight under
//! one lock.

use burn::prelude::*;
use std::sync::Mutex;

static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Build a module with the device's random generator seeded: weight initialisation is
/// reproducible. The generator is global in burn, so concurrent initialisations are
/// serialised, and since burn draws a parameter's initial values only when it is first used,
/// every parameter of the module is drawn before the lock is released (otherwise a concurrent
/// training would change them).
pub fn seeded<M: burn::module::Module>(device: &Device, seed: u64, f: impl FnOnce() -> M) -> M {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    materialize(f())
}

/// [`seeded`] for a builder that can fail.
pub fn try_seeded<M: burn::module::Module, E>(
    device: &Device,
    seed: u64,
    f: impl FnOnce() -> std::result::Result<M, E>,
) -> std::result::Result<M, E> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    f().map(materialize)
}

/// Draw the initial values of every lazily initialised parameter of `module` now.
fn materialize<M: burn::module::Module>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}
