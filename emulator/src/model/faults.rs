//! Faults and limits that change while the emulator runs, and the seeded rolls that decide
//! which request or callback meets a fault (the same seed and the same requests give the same
//! faults).

use std::time::Duration;

use serde::Serialize;

use super::{EmulatorError, Model};
use crate::settings::{CallbackFaults, FaultKind, Faults, Settings};

/// What can change while the emulator runs.
pub(super) struct Live {
    concurrency_limit: Option<usize>,
    concurrency_header: bool,
    latency: Duration,
    faults: Faults,
    fault_rng: fastrand::Rng,
    callback_faults: CallbackFaults,
    callback_rng: fastrand::Rng,
}

impl Live {
    pub(super) fn from(s: &Settings) -> Live {
        Live {
            concurrency_limit: s.concurrency_limit,
            concurrency_header: s.concurrency_header,
            latency: s.latency,
            fault_rng: fastrand::Rng::with_seed(s.faults.seed),
            faults: s.faults.clone(),
            callback_rng: fastrand::Rng::with_seed(s.callback_faults.seed),
            callback_faults: s.callback_faults.clone(),
        }
    }
}

/// The live settings as the control API and the page show them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LiveView {
    pub concurrency_limit: Option<usize>,
    pub latency_ms: u64,
    pub faults: Vec<(String, f64)>,
    pub fault_seed: u64,
    pub callback_faults: CallbackFaultsView,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct CallbackFaultsView {
    pub duplicate: f64,
    pub reorder: f64,
    pub drop_first: f64,
    pub seed: u64,
}

/// One REST request's roll of the dice and the limits it meets.
pub(crate) struct Roll {
    pub fault: Option<FaultKind>,
    pub stall: Duration,
    pub limit: Option<usize>,
    pub header: bool,
    pub latency: Duration,
}

impl Model {
    /// One seeded roll per REST request: the same seed and the same requests give the same
    /// faults.
    pub fn roll(&self) -> Roll {
        let mut state = self.state();
        let live = &mut state.live;
        let roll = live.fault_rng.f64();
        Roll {
            fault: live.faults.pick(roll),
            stall: live.faults.stall,
            limit: live.concurrency_limit,
            header: live.concurrency_header,
            latency: live.latency,
        }
    }

    /// Whether this message is held back for the next one (the reorder fault's roll).
    pub fn roll_reorder(&self) -> bool {
        let live = &mut self.state().live;
        let rate = live.callback_faults.reorder;
        rate > 0.0 && live.callback_rng.f64() < rate
    }

    /// (drop the first attempt, send a duplicate after a success) for one delivery.
    pub fn roll_callback_faults(&self) -> (bool, bool) {
        let live = &mut self.state().live;
        let roll_drop = live.callback_rng.f64();
        let roll_duplicate = live.callback_rng.f64();
        (
            roll_drop < live.callback_faults.drop_first,
            roll_duplicate < live.callback_faults.duplicate,
        )
    }

    pub fn set_faults(&self, faults: Faults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut state = self.state();
        state.live.fault_rng = fastrand::Rng::with_seed(faults.seed);
        state.live.faults = faults;
        self.changed(&mut state);
        Ok(())
    }

    pub fn set_callback_faults(&self, faults: CallbackFaults) -> Result<(), EmulatorError> {
        faults.check().map_err(EmulatorError::Setting)?;
        let mut state = self.state();
        state.live.callback_rng = fastrand::Rng::with_seed(faults.seed);
        state.live.callback_faults = faults;
        self.changed(&mut state);
        Ok(())
    }

    pub fn set_concurrency_limit(&self, limit: Option<usize>) {
        let mut state = self.state();
        state.live.concurrency_limit = limit;
        self.changed(&mut state);
    }

    pub fn set_latency(&self, latency: Duration) {
        let mut state = self.state();
        state.live.latency = latency;
        self.changed(&mut state);
    }

    pub fn live_view(&self) -> LiveView {
        let state = self.state();
        let live = &state.live;
        LiveView {
            concurrency_limit: live.concurrency_limit,
            latency_ms: live.latency.as_millis() as u64,
            faults: live
                .faults
                .rates
                .iter()
                .map(|(k, r)| (k.name().to_owned(), *r))
                .collect(),
            fault_seed: live.faults.seed,
            callback_faults: CallbackFaultsView {
                duplicate: live.callback_faults.duplicate,
                reorder: live.callback_faults.reorder,
                drop_first: live.callback_faults.drop_first,
                seed: live.callback_faults.seed,
            },
        }
    }
}
