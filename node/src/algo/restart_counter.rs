//! `restart-counter`: proves what the durable log promises. Each incarnation persists and
//! syncs one `Synced` record, then persists one `Unsynced` record that it never syncs.
//! After any number of SIGKILLs and restarts, `read {key: 0}` answers how many synced
//! records were found at start (= earlier incarnations) and `read {key: 1}` how many
//! unsynced ones were (always 0: they died with the process). Serves the `durability`
//! workload, which checks exactly that against the run's kills, and `echo`.
//!
//! Mutant (`--bug skip-sync`): the `Synced` record is never synced either, so a SIGKILL
//! loses it and the next incarnation undercounts.

use super::{check_bugs, not_supported, Algorithm, ClientReq, Config, Ctx, NodeId};
use proto::ops::{ClientOp, ClientReply};
use serde::{Deserialize, Serialize};

/// The node: what it found in its log at start.
pub struct RestartCounter {
    synced_found: u64,
    unsynced_found: u64,
    skip_sync: bool,
}

/// No peer messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {}

/// Log records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    /// Written and synced at start.
    Synced,
    /// Written at start, never synced.
    Unsynced,
}

impl Algorithm for RestartCounter {
    type Msg = Msg;
    type Timer = ();
    type Record = Record;
    const BUGS: &'static [&'static str] = &["skip-sync"];

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        Ok(RestartCounter {
            synced_found: 0,
            unsynced_found: 0,
            skip_sync: config.has_bug("skip-sync"),
        })
    }

    fn on_start(&mut self, recovered: Vec<Record>, ctx: &mut Ctx<Self>) {
        for r in recovered {
            match r {
                Record::Synced => self.synced_found += 1,
                Record::Unsynced => self.unsynced_found += 1,
            }
        }
        ctx.persist(Record::Synced);
        if !self.skip_sync {
            ctx.sync();
        }
        ctx.persist(Record::Unsynced);
    }

    fn on_msg(&mut self, _from: NodeId, msg: Msg, _ctx: &mut Ctx<Self>) {
        match msg {}
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        let reply = match &req.op {
            ClientOp::Echo { echo } => ClientReply::EchoOk { echo: echo.clone() },
            ClientOp::Read { key: 0 } => ClientReply::ReadOk {
                value: Some(self.synced_found),
            },
            ClientOp::Read { key: 1 } => ClientReply::ReadOk {
                value: Some(self.unsynced_found),
            },
            other => not_supported(other),
        };
        ctx.reply(&req, reply);
    }

    fn on_timer(&mut self, _timer: (), _ctx: &mut Ctx<Self>) {}
}
