//! `--schedule FILE`: a fault plan read from a file, refused before it is read when it
//! is larger than any valid schedule.

use std::path::PathBuf;

use crate::nemesis::Schedule;
use crate::UsageError;

/// A fault plan read from a file (`--schedule`).
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// Where it was read from (kept in `run.json` as `schedule_from`).
    pub path: PathBuf,
    /// The plan.
    pub schedule: Schedule,
}

/// Reads a fault plan (`--schedule FILE`).
pub fn read_plan_file(path: PathBuf) -> Result<PlanFile, UsageError> {
    // Refused before it is read: a schedule cannot be larger than this and be valid.
    let max = crate::nemesis::SCHEDULE_BYTES_MAX;
    if let Some(m) = std::fs::metadata(&path)
        .ok()
        .filter(|m| m.len() > max as u64)
    {
        return Err(UsageError(format!(
            "--schedule {}: {} bytes; a schedule has at most {max}",
            path.display(),
            m.len()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("--schedule {}: {e}", path.display())))?;
    let schedule = Schedule::from_json(&text)
        .map_err(|e| UsageError(format!("--schedule {}: {e}", path.display())))?;
    Ok(PlanFile { path, schedule })
}
