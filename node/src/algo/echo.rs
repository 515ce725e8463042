//! `echo`: answers every `echo` request with its payload. The smallest algorithm that
//! exercises the whole path client -> router -> node -> router -> client.

use super::{check_bugs, not_supported, Algorithm, ClientReq, Config, Ctx, NodeId};
use proto::ops::{ClientOp, ClientReply};
use serde::{Deserialize, Serialize};

/// The echo node. Stateless.
pub struct Echo;

/// Echo sends no peer messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {}

impl Algorithm for Echo {
    type Msg = Msg;
    type Timer = ();
    type Record = ();

    fn new(config: &Config) -> Result<Self, String> {
        check_bugs(config, Self::BUGS)?;
        Ok(Echo)
    }

    fn on_start(&mut self, _recovered: Vec<()>, _ctx: &mut Ctx<Self>) {}

    fn on_msg(&mut self, _from: NodeId, msg: Msg, _ctx: &mut Ctx<Self>) {
        match msg {}
    }

    fn on_client(&mut self, req: ClientReq, ctx: &mut Ctx<Self>) {
        match &req.op {
            ClientOp::Echo { echo } => {
                let reply = ClientReply::EchoOk { echo: echo.clone() };
                ctx.reply(&req, reply);
            }
            other => ctx.reply(&req, not_supported(other)),
        }
    }

    fn on_timer(&mut self, _timer: (), _ctx: &mut Ctx<Self>) {}
}
