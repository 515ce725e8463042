//! `squall plan`: prints the named fault plans, or one plan, or writes it to a file. The
//! plans themselves are data, made in [`crate::nemesis::plans`] (no IO under `nemesis`).

use std::path::PathBuf;

use clap::Args;

use crate::nemesis::plans::{parse_msg_type, plan, PlanOpts, PLANS};
use crate::text::parse_duration_ms;

/// `squall plan` options.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// The plan (`squall plan --list` names them).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// List the plans and what each is for.
    #[arg(long)]
    pub list: bool,
    /// The run's time limit.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub time_limit: u64,
    /// The quiet window after the time limit.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub recovery_time: u64,
    /// How many times a triggered fault is armed.
    #[arg(long, default_value_t = 200)]
    pub repeats: u32,
    /// Write the plan here and print the path (default: print the plan).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// BUNDLED=THEIRS: aim at the target's name for a bundled message type
    /// (`--msg-type decided=decide`); repeatable.
    #[arg(long = "msg-type", value_name = "BUNDLED=THEIRS", value_parser = parse_msg_type)]
    pub msg_types: Vec<(String, String)>,
}

/// Prints the plan list, the plan, or writes it to `--out` and prints the path.
pub fn plan_cmd(args: &PlanArgs) -> anyhow::Result<u8> {
    let Some(name) = args.name.as_deref().filter(|_| !args.list) else {
        for (name, what) in PLANS {
            println!("{name:<22} {what}");
        }
        return Ok(0);
    };
    let opts = PlanOpts {
        time_limit_ms: args.time_limit,
        recovery_ms: args.recovery_time,
        repeats: args.repeats,
        msg_types: args.msg_types.iter().cloned().collect(),
    };
    let text = plan(name, &opts)?;
    match &args.out {
        Some(path) => {
            crate::results::write_text(path, &text)?;
            println!("{}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(0)
}
