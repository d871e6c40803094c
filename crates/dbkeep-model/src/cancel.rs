//! Cancellation of a running backup from another thread: timeouts, stalls and shutdown.

use std::sync::{Arc, Mutex, MutexGuard};

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inner {
    reason: Option<String>,
    hooks: Vec<Hook>,
}

/// A shared flag that ends a running backup, with the reason recorded in the catalog.
///
/// Cloning shares the flag. Engines register hooks (such as killing a child process) that run
/// once, when the flag is first raised, so that even a backup blocked on a silent pipe ends.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Mutex<Inner>>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Cancel").field(&self.reason()).finish()
    }
}

impl Cancel {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Raises the flag with `reason` (the first reason wins) and runs the registered hooks.
    pub fn cancel(&self, reason: impl Into<String>) {
        let hooks = {
            let mut inner = self.lock();
            if inner.reason.is_some() {
                return;
            }
            inner.reason = Some(reason.into());
            std::mem::take(&mut inner.hooks)
        };
        for hook in hooks {
            hook();
        }
    }

    /// Why the backup was cancelled, once it was.
    pub fn reason(&self) -> Option<String> {
        self.lock().reason.clone()
    }

    /// Runs `hook` when the flag is raised, or now if it already is.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut inner = self.lock();
        if inner.reason.is_some() {
            drop(inner);
            hook();
        } else {
            inner.hooks.push(Box::new(hook));
        }
    }
}
