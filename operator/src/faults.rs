//! Fault points: the places in multi-step actions (key and claim creation, a shred, a
//! workspace's deletion, an export's key shred and release) where the crash tests stop the
//! operator, to prove that whoever comes next takes each step up again and loses nothing.
//!
//! The points are `fail::fail_point!` (tikv/fail-rs), which compile to nothing unless the
//! `faults` feature is on; the image never has it. In a build that has it,
//! `FAILPOINTS="<point>=panic"` arms a point, and reaching it aborts the process at once, as
//! abruptly as `kill -9`: no destructor runs, no queued record is flushed, no lease released.

/// Arms the fault points `FAILPOINTS` names, in a build with the `faults` feature, and makes a
/// panic abort the process. Does nothing otherwise.
pub fn arm() {
    #[cfg(feature = "faults")]
    {
        std::mem::forget(fail::FailScenario::setup());
        std::panic::set_hook(Box::new(|panic| {
            eprintln!("hygie: crashed at a fault point: {panic}");
            std::process::abort();
        }));
    }
}
