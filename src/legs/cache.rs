//! The resolutions of one client, bounded: which legs a call has and which clients are on
//! them, for every leg of each call cached (what is cached when: the parent module's docs).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::{CallLeg, ClientLeg};
use crate::sid::CallSid;

/// How many calls' resolutions a client keeps (each well under a kilobyte).
pub const CLIENT_LEG_CACHE_CAPACITY: usize = 10_000;

/// A call's legs and the clients on them.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) legs: Vec<CallLeg>,
    pub(crate) clients: Vec<ClientLeg>,
}

/// The resolutions of one client (shared by its clones), bounded.
#[derive(Default)]
pub(crate) struct LegCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// Every leg of a cached call maps to the call's resolution.
    by_leg: HashMap<CallSid, Arc<Resolved>>,
    /// Calls in the order they were cached (their first leg), for forgetting the oldest.
    order: VecDeque<CallSid>,
}

impl LegCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, call: &CallSid) -> Option<Arc<Resolved>> {
        self.lock().by_leg.get(call).cloned()
    }

    pub(crate) fn put(&self, resolved: &Arc<Resolved>) {
        let mut inner = self.lock();
        let Some(first) = resolved.legs.first() else {
            return;
        };
        // A call resolved again replaces its entry rather than taking a second one.
        for leg in &resolved.legs {
            inner.remove_call(&leg.call_sid);
        }
        while inner.order.len() >= CLIENT_LEG_CACHE_CAPACITY {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.remove_legs(&oldest);
        }
        for leg in &resolved.legs {
            inner.by_leg.insert(leg.call_sid, resolved.clone());
        }
        inner.order.push_back(first.call_sid);
    }

    /// Drops the resolution `call` belongs to (every leg of it).
    pub(crate) fn forget(&self, call: &CallSid) {
        self.lock().remove_call(call);
    }

    /// How many calls are cached.
    pub(crate) fn len(&self) -> usize {
        self.lock().order.len()
    }
}

impl CacheInner {
    /// Forgets the call `leg` belongs to.
    fn remove_call(&mut self, leg: &CallSid) {
        if let Some(first) = self.remove_legs(leg) {
            self.order.retain(|c| c != &first);
        }
    }

    /// Unmaps every leg of the call `leg` belongs to; its first leg (its key in `order`).
    fn remove_legs(&mut self, leg: &CallSid) -> Option<CallSid> {
        let resolved = self.by_leg.get(leg).cloned()?;
        for leg in &resolved.legs {
            self.by_leg.remove(&leg.call_sid);
        }
        resolved.legs.first().map(|l| l.call_sid)
    }
}

impl fmt::Debug for LegCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegCache")
            .field("calls", &self.len())
            .finish()
    }
}
